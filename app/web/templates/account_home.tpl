% if ok:
<p class="ok" role="status">{{ok}}</p>
% end
% if err:
<p class="error" role="alert">{{err}}</p>
% end
<table>
<tr><th>Account</th><td>{{account}}</td></tr>
<tr><th>Storage</th><td>{{usage}}</td></tr>
</table>
<h2>Your addresses</h2>
<ul>
% for a in addresses:
<li>{{a}}</li>
% end
</ul>
% if aliases:
<h2>Lists and aliases you are on</h2>
<ul>
% for a in aliases:
<li>{{a}}</li>
% end
</ul>
% end
<h2>Mail client settings</h2>
<p><a href="{{base}}settings">Settings to enter by hand</a> · <a href="{{base}}profile.mobileconfig">Apple profile (iPhone, iPad, Mac)</a></p>
<h2>Change password</h2>
<form method="post" action="{{base}}password" class="card">
<input type="hidden" name="csrf" value="{{csrf}}">
<label>Current password <input type="password" name="current" autocomplete="current-password" required></label>
<label>New password <input type="password" name="new" autocomplete="new-password" required minlength="8"></label>
<label>New password again <input type="password" name="new2" autocomplete="new-password" required minlength="8"></label>
<button type="submit">Change password</button>
</form>
