% if err:
<p class="error" role="alert">{{err}}</p>
% end
<form method="post" action="{{base}}setup" class="card">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="token" value="{{token}}">
<label>Host name of this server (the MX target) <input name="hostname" required value="{{hostname}}"></label>
<label>Your email address (its domain and account are created) <input name="address" type="email" required value="{{address}}" placeholder="you@example.com"></label>
<label>Admin password (empty: generate one) <input name="admin_password" type="password" autocomplete="new-password"></label>
<fieldset>
<legend>TLS certificates</legend>
<label><input type="radio" name="tls" value="self_signed" {{"checked" if tls != "files" else ""}}> Self-signed for now (for testing; replace later)</label>
<label><input type="radio" name="tls" value="files" {{"checked" if tls == "files" else ""}}> Certificate and key files on this server</label>
<label>Certificate file (PEM, chain) <input name="cert" value="{{cert}}" placeholder="/etc/pillarbox/mail.crt"></label>
<label>Key file (PEM) <input name="key" value="{{key}}" placeholder="/etc/pillarbox/mail.key"></label>
</fieldset>
<button type="submit">Set up Pillarbox</button>
</form>
