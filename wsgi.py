from portal import create_app, keep_startup_objects

app = create_app()
keep_startup_objects()
