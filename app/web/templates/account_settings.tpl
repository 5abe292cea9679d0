<table>
<tr><th>User name</th><td>{{email}}</td></tr>
<tr><th>Incoming (IMAP)</th><td>{{cs.host}}, port {{cs.imaps_port}}, SSL/TLS<br><span class="muted">or port {{cs.imap_port}} with STARTTLS</span></td></tr>
<tr><th>Outgoing (SMTP)</th><td>{{cs.host}}, port {{cs.submissions_port}}, SSL/TLS<br><span class="muted">or port {{cs.submission_port}} with STARTTLS</span></td></tr>
<tr><th>Authentication</th><td>normal password</td></tr>
</table>
<p><a href="{{base}}">Back</a></p>
