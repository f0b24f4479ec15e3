package admin

func (a *API) accountRoutes() {}
