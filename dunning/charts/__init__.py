"""Charts and the self-contained HTML page that shows them, for `dunning report --html`
and the simulator: functions of plain series and matrices, no report types here."""
