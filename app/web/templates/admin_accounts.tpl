% if ok:
<p class="ok" role="status">{{ok}}</p>
% end
% if err:
<p class="error" role="alert">{{err}}</p>
% end
<table>
<tr><th>Account</th><th>Addresses</th><th>Quota</th></tr>
% for a in accounts:
<tr><td><a href="{{base}}accounts/{{a.name}}">{{a.name}}</a></td><td>{{", ".join(a.addresses)}}</td><td>{{a.quota}}</td></tr>
% end
</table>
<h2>Add an account</h2>
<form method="post" action="{{base}}accounts" class="card">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="add">
<label>Account name <input name="account" required pattern="[a-z0-9][a-z0-9._-]*" placeholder="alice"></label>
<label>First address <input name="address" type="email" required placeholder="alice@example.com"></label>
<label>Password (optional) <input name="password" type="password" autocomplete="new-password"></label>
<label>Quota in bytes (0: default, negative: unlimited) <input name="quota" type="number" value="0"></label>
<button type="submit">Add account</button>
</form>
