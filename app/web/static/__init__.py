"""Static files (CSS, small JS) of the web interfaces, served by app.web.pages.static_file."""
