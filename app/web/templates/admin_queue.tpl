% if ok:
<p class="ok" role="status">{{ok}}</p>
% end
% if err:
<p class="error" role="alert">{{err}}</p>
% end
% if not entries:
<p>The queue is empty: every message has been delivered or returned to its sender.</p>
% else:
<table>
<tr><th>Id</th><th>From</th><th>To</th><th>Attempts</th><th>Last error</th><th>State</th><th></th></tr>
% for e in entries:
<tr>
<td>{{e["id"]}}</td>
<td>{{e["from"]}}</td>
<td>{{e["to"]}}</td>
<td>{{e["attempts"]}}</td>
<td>{{e["last_error"]}}</td>
<td>{{"held" if e["hold"] else e["state"]}}</td>
<td>
% for action, label in (("unhold", "Release") if e["hold"] else ("hold", "Hold"), ("retry", "Retry now"), ("drop", "Drop")):
<form method="post" class="inline">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="id" value="{{e['id']}}">
<input type="hidden" name="action" value="{{action}}">
<button type="submit" class="{{'danger' if action == 'drop' else ''}}">{{label}}</button>
</form>
% end
</td>
</tr>
% end
</table>
% end
