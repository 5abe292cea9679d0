% if ok:
<p class="ok" role="status">{{ok}}</p>
% end
% if err:
<p class="error" role="alert">{{err}}</p>
% end
<table>
<tr><th>Domain</th><td>{{d.name.unicode}}
% if d.name.ascii != d.name.unicode:
<span class="muted">{{d.name.ascii}}</span>
% end
</td></tr>
<tr><th>Client settings host</th><td>{{d.client_host}}</td></tr>
<tr><th>Catch-all</th><td>{{catchall or "none"}}</td></tr>
<tr><th>MTA-STS mode</th><td>{{mtasts_mode}}</td></tr>
</table>
<h2>Addresses</h2>
<table>
<tr><th>Address</th><th>Goes to</th></tr>
% for addr, dest in addresses:
<tr><td>{{addr}}</td><td>{{dest}}</td></tr>
% end
</table>
<h2>Catch-all</h2>
<form method="post" class="card">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="catchall">
<label>Account receiving mail for unknown addresses (empty: none)
<select name="account"><option value="">none</option>
% for a in accounts:
<option value="{{a}}" {{"selected" if catchall == a else ""}}>{{a}}</option>
% end
</select></label>
<button type="submit">Save catch-all</button>
</form>
<h2>MTA-STS policy</h2>
<form method="post" class="card">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="mtasts">
<label>Mode <select name="mode">
% for m in ("testing", "enforce", "none"):
<option value="{{m}}" {{"selected" if mtasts_mode == m else ""}}>{{m}}</option>
% end
</select></label>
<button type="submit">Save policy</button>
</form>
<h2>DNS records</h2>
<p class="muted">Add these records at your DNS provider.</p>
<pre>{{records_text}}</pre>
<form method="post">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="check">
<button type="submit">Check DNS now</button>
</form>
% if checks:
<table>
<tr><th>Record</th><th>Status</th><th>Advice</th></tr>
% for c in checks:
<tr><td><code>{{c.record.name}} {{c.record.type}}</code></td><td class="status-{{c.status}}">{{c.status}}</td><td>{{c.message}}</td></tr>
% end
</table>
% end
<h2>Remove domain</h2>
<form method="post" action="{{base}}domains">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="rm">
<input type="hidden" name="domain" value="{{d.name.ascii}}">
<button type="submit" class="danger">Remove {{d.name.unicode}}</button>
</form>
