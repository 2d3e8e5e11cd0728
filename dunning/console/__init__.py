"""The browser console (`/ui` on the API's app): server-rendered pages for operators,
supervisors and auditors, built from the API's roles and the one table of actions."""
