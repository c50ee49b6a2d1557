"""The app server's routers, one module per resource."""
