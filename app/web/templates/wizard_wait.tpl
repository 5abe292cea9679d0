<p>This server has not been set up yet.</p>
<p>Open the setup link that the server wrote to its log (the line with <code>setup wizard waiting</code>), or set an admin password on the server with <code>pillarbox setadminpassword</code>.</p>
