package admin

func (a *API) auditRoutes() {}
