"""The staff workbench: server-rendered pages in Chinese for cadres and offices, under /workbench/.

Escalation serves it on its staff listener (never the public one: every route not named in
`app.PUBLIC_PATHS` is staff). Its parts:

- `session`: the signed-in person of a page (`PageStaff`), the navigation each role sees and
  `render`, which fills `templates/base.html` (header, navigation, a `content` block);
- `sign_in`: the sign-in page (a staff token kept in an HttpOnly, SameSite=Strict cookie),
  sign-out, and /workbench/ itself;
- `triage`, `tasks`, `forms`: the triage queue, the task board, the cadre's forms.

How a page module plugs in:

1. Write `services/escalation/workbench/<name>.py` with `router = APIRouter(prefix=PREFIX,
   include_in_schema=False)` and routes taking `staff: PageStaff` (the sign-in redirect comes
   with it); check the role with `staff.may(...)` / `staff.require(...)` and the scope with
   `staff.covers(place)` or the storage queries' `within=staff`.
2. Answer with `render(request, staff, "<name>.html", active="<nav key>", title="…", …)`;
   the template starts `{% extends "base.html" %}` and fills `{% block content %}` (and
   `{% block page_style %}` for its own CSS). The nav keys are in `session.NAV`.
3. A form POSTs to the same origin with the cookie: `gridline.staff.http.signed_in` refuses a
   cookie-carried POST whose `Origin` is another site's, so no token field is needed.
4. Add the module's `router` to the `routers` of `services/escalation/app.py`.
"""
