% if ok:
<p class="ok" role="status">{{ok}}</p>
% end
% if err:
<p class="error" role="alert">{{err}}</p>
% end
<p>Changes take effect at once and are kept across restarts. "(all)" is every package
without a level of its own.</p>
<table>
<tr><th>Package</th><th>Level</th><th></th></tr>
% for r in rows:
<tr>
<td><code>{{r["package"]}}</code>{{" (set)" if r["set"] else ""}}</td>
<td>
<form method="post" class="inline">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="package" value="{{r['package']}}">
<select name="level" aria-label="level of {{r['package']}}">
% for lv in levels:
<option value="{{lv}}" {{"selected" if lv == r["level"] else ""}}>{{lv}}</option>
% end
<option value="default">default</option>
</select>
<button type="submit">Set</button>
</form>
</td>
</tr>
% end
</table>
