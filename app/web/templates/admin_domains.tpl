% if ok:
<p class="ok" role="status">{{ok}}</p>
% end
% if err:
<p class="error" role="alert">{{err}}</p>
% end
<table>
<tr><th>Domain</th><th>Client settings host</th><th>Description</th></tr>
% for d in domains:
<tr><td><a href="{{base}}domains/{{d.name.ascii}}">{{d.name.unicode}}</a></td><td>{{d.client_host}}</td><td>{{d.description}}</td></tr>
% end
</table>
<h2>Add a domain</h2>
<form method="post" action="{{base}}domains" class="card">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="add">
<label>Domain <input name="domain" required placeholder="example.com"></label>
<label>Client settings host (optional, default mail.DOMAIN) <input name="client_settings_domain" placeholder="mail.example.com"></label>
<label>Description (optional) <input name="description"></label>
<button type="submit">Add domain</button>
</form>
