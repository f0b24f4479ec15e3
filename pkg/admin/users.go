package admin

func (a *API) userRoutes() {}
