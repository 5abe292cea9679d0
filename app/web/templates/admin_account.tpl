% if ok:
<p class="ok" role="status">{{ok}}</p>
% end
% if err:
<p class="error" role="alert">{{err}}</p>
% end
<table>
<tr><th>Account</th><td>{{a.name}}</td></tr>
<tr><th>Full name</th><td>{{a.full_name}}</td></tr>
<tr><th>Quota setting</th><td>{{a.quota}}</td></tr>
<tr><th>Usage</th><td>{{usage}}</td></tr>
</table>
<h2>Addresses</h2>
<table>
% for addr in a.addresses:
<tr><td>{{addr}}</td><td>
<form method="post" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="action" value="address-rm"><input type="hidden" name="address" value="{{addr}}"><button type="submit" class="danger">Remove</button></form>
</td></tr>
% end
</table>
<form method="post" class="card">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="address-add">
<label>New address (@domain for a catch-all) <input name="address" required></label>
<button type="submit">Add address</button>
</form>
<h2>Password</h2>
<form method="post" class="card">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="password">
<label>New password <input name="password" type="password" autocomplete="new-password" required></label>
<button type="submit">Set password</button>
</form>
<h2>Quota</h2>
<form method="post" class="card">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="quota">
<label>Bytes (0: default, negative: unlimited) <input name="quota" type="number" value="{{a.quota}}"></label>
<button type="submit">Set quota</button>
</form>
<h2>Remove account</h2>
<form method="post" action="{{base}}accounts">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="rm">
<input type="hidden" name="account" value="{{a.name}}">
<button type="submit" class="danger">Remove account {{a.name}}</button>
</form>
