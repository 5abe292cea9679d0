<p class="ok" role="status">Pillarbox is set up.</p>
<p>Write these down now; they are not shown again.</p>
<table>
<tr><th>Address</th><td>{{r.address}} (account {{r.account}})</td></tr>
<tr><th>Account password</th><td><code class="secret" id="account-password">{{r.password}}</code></td></tr>
% if r.generated_admin:
<tr><th>Admin password</th><td><code class="secret" id="admin-password">{{r.admin_password}}</code></td></tr>
% end
</table>
<h2>DNS records to create</h2>
<pre>{{r.dns}}</pre>
<p><a href="{{base}}">Continue to the admin login</a></p>
