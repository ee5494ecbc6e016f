package httpapi

// SetAuditCSVPage makes CSV exports of the audit trail read n entries at
// a time (so that a test sees several pages) and returns the restore.
func SetAuditCSVPage(n int) (restore func()) {
	old := auditCSVPage
	auditCSVPage = n
	return func() { auditCSVPage = old }
}
