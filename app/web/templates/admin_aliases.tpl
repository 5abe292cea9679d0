% if ok:
<p class="ok" role="status">{{ok}}</p>
% end
% if err:
<p class="error" role="alert">{{err}}</p>
% end
% for al in aliases:
<h2>{{al.address}}</h2>
<p class="muted">{{"anyone may send" if al.post_public else "only members may send"}}; {{"members see each other" if al.list_members else "members are not shown"}}</p>
<table>
% for m in al.members:
<tr><td>{{m}}</td><td><form method="post" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="action" value="rmmember"><input type="hidden" name="alias" value="{{al.address}}"><input type="hidden" name="member" value="{{m}}"><button type="submit" class="danger">Remove</button></form></td></tr>
% end
</table>
<form method="post" class="card">
<input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="action" value="addmember"><input type="hidden" name="alias" value="{{al.address}}">
<label>Add member <input name="member" type="email" required></label>
<button type="submit">Add member</button>
</form>
<form method="post"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="action" value="rm"><input type="hidden" name="alias" value="{{al.address}}"><button type="submit" class="danger">Remove alias {{al.address}}</button></form>
% end
<h2>Add an alias or list</h2>
<form method="post" class="card">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="action" value="add">
<label>Alias address <input name="alias" type="email" required placeholder="team@example.com"></label>
<label>Members, comma separated <input name="members" placeholder="alice@example.com, bob@example.com"></label>
<label><input type="checkbox" name="post_public" value="1"> Anyone may send to it</label>
<label><input type="checkbox" name="list_members" value="1"> Members may see the member list</label>
<button type="submit">Add alias</button>
</form>
