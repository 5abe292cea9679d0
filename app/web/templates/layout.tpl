<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · Pillarbox</title>
<link rel="stylesheet" href="{{base}}static/style.css">
</head>
<body>
<header>
<a class="brand" href="{{base}}">Pillarbox</a>
<nav>
% for href, label in nav:
<a href="{{href}}">{{label}}</a>
% end
</nav>
% if logout:
<form method="post" action="{{logout}}" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="link">Log out</button></form>
% end
</header>
<main>
<h1>{{title}}</h1>
{{!body}}
</main>
<footer>Pillarbox {{version}}</footer>
</body>
</html>
