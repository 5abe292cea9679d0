<h2>Server</h2>
<table>
<tr><th>Version</th><td>{{version}}</td></tr>
<tr><th>Host name</th><td>{{hostname}}</td></tr>
<tr><th>Data directory</th><td><code>{{data_dir}}</code></td></tr>
<tr><th>Disk</th><td>{{disk}}</td></tr>
</table>
<h2>Listeners</h2>
<table>
<tr><th>Name</th><th>Addresses</th><th>Services</th></tr>
% for name, ips, svcs in listeners:
<tr><td>{{name}}</td><td>{{ips}}</td><td>{{svcs}}</td></tr>
% end
</table>
<h2>Accounts</h2>
<table>
<tr><th>Account</th><th>Messages</th><th>Used</th><th>Quota</th></tr>
% for name, messages, used, limit in accounts:
<tr><td><a href="{{base}}accounts/{{name}}">{{name}}</a></td><td>{{messages}}</td><td>{{used}}</td><td>{{limit}}</td></tr>
% end
</table>
