package admin

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// federatedInput is the body of a new federated credential.
type federatedInput struct {
	Name      string            `json:"name"`
	Issuer    string            `json:"issuer"`
	Subject   string            `json:"subject"`
	Audiences []string          `json:"audiences"`
	Claims    map[string]string `json:"claims"`
}

// federatedView is a federated credential as the API shows it.
type federatedView struct {
	ID        int64             `json:"id"`
	ClientID  int64             `json:"client_id"`
	Name      string            `json:"name"`
	Issuer    string            `json:"issuer"`
	Subject   string            `json:"subject"`
	Audiences []string          `json:"audiences"`
	Claims    map[string]string `json:"claims"`
	CreatedBy *int64            `json:"created_by"`
	CreatedAt time.Time         `json:"created_at"`
}

func viewFederated(fc storage.FederatedCredential) federatedView {
	v := federatedView{ID: fc.ID, ClientID: fc.ClientID, Name: fc.Name, Issuer: fc.Issuer, Subject: fc.Subject,
		Audiences: fc.Audiences, Claims: fc.Claims, CreatedAt: fc.CreatedAt.UTC()}
	if v.Claims == nil {
		v.Claims = map[string]string{}
	}
	if fc.CreatedBy != 0 {
		v.CreatedBy = &fc.CreatedBy
	}
	return v
}

func (a *API) routeFederated() {
	const path = "/clients/{id:[0-9]+}/federated-credentials"
	a.handle(http.MethodPost, path, a.createFederated)
	a.handle(http.MethodGet, path, a.listFederated)
	a.handle(http.MethodDelete, path+"/{fid:[0-9]+}", a.deleteFederated)
}

func (a *API) createFederated(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	var in federatedInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	fc, err := a.opts.Service.CreateFederatedCredential(r.Context(), act, pathID(r), want, manage.FederatedCredentialInput{
		Name: in.Name, Issuer: in.Issuer, Subject: in.Subject, Audiences: in.Audiences, Claims: in.Claims,
	})
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.Header().Set("Location", Prefix+"/clients/"+strconv.FormatInt(fc.ClientID, 10)+"/federated-credentials/"+strconv.FormatInt(fc.ID, 10))
	writeJSON(w, http.StatusCreated, viewFederated(fc))
}

// listFederated answers every federated credential of a client: at most
// manage's limit per client, so the list takes no parameters, and refuses
// any (a pagination or filter parameter would silently be ignored).
func (a *API) listFederated(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	if q := r.URL.Query(); len(q) > 0 {
		var errs []fieldError
		for _, name := range slices.Sorted(maps.Keys(q)) {
			errs = append(errs, fieldError{Field: name, Detail: "is not a parameter of this list (it takes none: a client has at most a few federated credentials)"})
		}
		writeProblem(w, r, badRequest("Unknown query parameter.", errs...))
		return
	}
	list, err := a.opts.Service.ListFederatedCredentials(r.Context(), act, pathID(r))
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	items := make([]federatedView, len(list))
	for i, fc := range list {
		items[i] = viewFederated(fc)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (a *API) deleteFederated(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	fid, err := strconv.ParseInt(mux.Vars(r)["fid"], 10, 64)
	if err != nil {
		fid = -1 // not an id anything has: answers 404
	}
	if err := a.opts.Service.DeleteFederatedCredential(r.Context(), act, pathID(r), fid, want); err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
