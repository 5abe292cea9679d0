% if message:
<p class="error" role="alert">{{message}}</p>
% end
<form method="post" action="{{action}}" class="card">
<input type="hidden" name="csrf" value="{{token}}">
% if ask_user:
<label>Email address <input type="email" name="username" autocomplete="username" required value="{{username}}"></label>
% end
<label>Password <input type="password" name="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button>
</form>
