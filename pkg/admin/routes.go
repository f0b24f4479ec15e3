package admin

func (a *API) routes() {
	a.clientRoutes()
	a.userRoutes()
	a.accountRoutes()
	a.auditRoutes()
	a.usageRoutes()
	a.webhookRoutes()
}
