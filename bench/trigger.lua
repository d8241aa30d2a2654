-- wrk script: POST to the trigger URL given on the command line, empty body.
wrk.method = "POST"
wrk.headers["Connection"] = "keep-alive"
