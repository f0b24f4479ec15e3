package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/pkg/manage"
)

// federatedForm is the add form of a federated credential, as sent.
type federatedForm struct {
	Name, Issuer, Subject, Audiences, Claims string
}

// federatedLabels name the add form's fields in messages.
var federatedLabels = map[string]string{
	"name":      "The credential's name",
	"issuer":    "Issuer",
	"subject":   "Subject",
	"audiences": "Audiences",
	"claims":    "Claim conditions",
}

// claimLines reads claim conditions, one NAME=VALUE a line; a line
// without "=" is kept whole as a name with no value, which the service
// refuses with a message.
func claimLines(s string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, _ := strings.Cut(line, "=")
		out[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	return out
}

func (c *Console) addFederated(w http.ResponseWriter, r *http.Request, st *state) {
	k := clientKind
	cl, ok := c.loadCredential(w, r, st, k)
	if !ok {
		return
	}
	f := r.PostForm
	sent := federatedForm{Name: f.Get("fed_name"), Issuer: strings.TrimSpace(f.Get("fed_issuer")), Subject: f.Get("fed_subject"),
		Audiences: f.Get("fed_audiences"), Claims: f.Get("fed_claims")}
	in := manage.FederatedCredentialInput{Name: sent.Name, Issuer: sent.Issuer, Subject: sent.Subject,
		Audiences: strings.FieldsFunc(sent.Audiences, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }),
		Claims:    claimLines(sent.Claims)}
	_, err := c.opts.Service.CreateFederatedCredential(r.Context(), st.act, cl.ID, 0, in)
	if err != nil {
		c.refused(w, r, st, err, nil, func(status int, errs formErrors) {
			// The messages go on top: the add form's field names are the
			// edit form's too (name).
			out := formErrors{}
			for _, f := range refusalOf(err).Fields {
				label := federatedLabels[f.Field]
				if label == "" {
					label = f.Field
				}
				out.add("", sentence(label, f.Detail))
			}
			if len(out) == 0 {
				out = errs
			}
			page := c.editForm(r, st, k, cl)
			page.Fed = sent
			c.render(w, r, st, status, "form", view{Title: cl.Name, Nav: k.Nav, Errors: out, Page: page})
		})
		return
	}
	http.Redirect(w, r, k.Path+"/"+strconv.FormatInt(cl.ID, 10)+"?ok=federated-added#federated", http.StatusSeeOther)
}

func (c *Console) deleteFederated(w http.ResponseWriter, r *http.Request, st *state) {
	k := clientKind
	cl, ok := c.loadCredential(w, r, st, k)
	if !ok {
		return
	}
	fid, err := strconv.ParseInt(r.PostForm.Get("credential"), 10, 64)
	if err != nil {
		fid = -1 // not an id anything has: answers 404
	}
	if err := c.opts.Service.DeleteFederatedCredential(r.Context(), st.act, cl.ID, fid, 0); err != nil {
		c.refused(w, r, st, err, nil, func(status int, errs formErrors) {
			c.render(w, r, st, status, "form", view{Title: cl.Name, Nav: k.Nav, Errors: errs, Page: c.editForm(r, st, k, cl)})
		})
		return
	}
	http.Redirect(w, r, k.Path+"/"+strconv.FormatInt(cl.ID, 10)+"?ok=federated-deleted#federated", http.StatusSeeOther)
}
