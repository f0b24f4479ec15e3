package admin

import (
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// openAPIPath is the document checked against the routes.
const openAPIPath = "../../docs/openapi.yaml"

// operationMethods are the OpenAPI operation keys of a path item.
var operationMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// bodyType names the Go type an operation decodes its JSON body into, and
// the members that type decodes but the operation always refuses (so the
// document leaves them out).
type bodyType struct {
	typ     reflect.Type
	refused []string
}

// requestBodies maps "METHOD /path" to its body type. An operation with a
// documented body and no entry here fails the test, so a new input type is
// added here when it is added to the API.
var requestBodies = map[string]bodyType{
	"POST /api/v1/clients":                            {reflect.TypeFor[clientInput](), []string{"status"}},
	"PATCH /api/v1/clients/{id}":                      {reflect.TypeFor[clientInput](), []string{"owner_id", "account_id", "password"}},
	"POST /api/v1/keys":                               {reflect.TypeFor[clientInput](), []string{"status", "grant_types"}},
	"PATCH /api/v1/keys/{id}":                         {reflect.TypeFor[clientInput](), []string{"owner_id", "account_id", "grant_types", "password"}},
	"POST /api/v1/clients/{id}/rotate":                {reflect.TypeFor[rotateInput](), nil},
	"POST /api/v1/keys/{id}/rotate":                   {reflect.TypeFor[rotateInput](), nil},
	"POST /api/v1/clients/{id}/tokens":                {reflect.TypeFor[tokenInput](), nil},
	"POST /api/v1/clients/{id}/federated-credentials": {reflect.TypeFor[federatedInput](), nil},
	"POST /api/v1/users":                              {reflect.TypeFor[userInput](), nil},
	"PATCH /api/v1/users/{id}":                        {reflect.TypeFor[userUpdate](), nil},
	"POST /api/v1/users/{id}/password":                {reflect.TypeFor[passwordInput](), nil},
	"POST /api/v1/accounts":                           {reflect.TypeFor[accountInput](), []string{"status"}},
	"PATCH /api/v1/accounts/{id}":                     {reflect.TypeFor[accountInput](), []string{"parent_id"}},
	"POST /api/v1/webhooks":                           {reflect.TypeFor[webhookInput](), nil},
	"PATCH /api/v1/webhooks/{id}":                     {reflect.TypeFor[webhookInput](), []string{"account_id"}},
}

// responseSchemas maps a component schema to the Go type the API writes
// for it, less the members the schema leaves to another one.
var responseSchemas = map[string]bodyType{
	"Credential":          {reflect.TypeFor[clientView](), []string{"client_secret", "key", "use"}},
	"Problem":             {reflect.TypeFor[problem](), nil},
	"User":                {reflect.TypeFor[userView](), nil},
	"Account":             {reflect.TypeFor[accountView](), nil},
	"AuditEvent":          {reflect.TypeFor[auditView](), nil},
	"FederatedCredential": {reflect.TypeFor[federatedView](), nil},
	"Webhook":             {reflect.TypeFor[webhookView](), []string{"secret"}},
	"WebhookDelivery":     {reflect.TypeFor[deliveryView](), nil},
}

// openAPI is the parsed document.
type openAPI struct {
	t    *testing.T
	root map[string]any
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatalf("parse %s: %v", openAPIPath, err)
	}
	return openAPI{t: t, root: root}
}

// resolve follows $ref (local references only) until v is not a reference.
func (d openAPI) resolve(v any) map[string]any {
	d.t.Helper()
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		v = d.pointer(ref)
	}
	d.t.Fatalf("$ref chain too long")
	return nil
}

// pointer looks up a local JSON pointer such as #/components/schemas/X.
func (d openAPI) pointer(ref string) any {
	d.t.Helper()
	if !strings.HasPrefix(ref, "#/") {
		d.t.Errorf("$ref %q is not a local reference", ref)
		return nil
	}
	var cur any = d.root
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok || m[part] == nil {
			d.t.Errorf("$ref %q does not resolve", ref)
			return nil
		}
		cur = m[part]
	}
	return cur
}

// operation is one documented operation.
type operation struct {
	method, path string
	op           map[string]any
}

func (o operation) String() string { return o.method + " " + o.path }

func (d openAPI) operations() []operation {
	var out []operation
	paths, _ := d.root["paths"].(map[string]any)
	for path, item := range paths {
		m, _ := item.(map[string]any)
		for _, method := range operationMethods {
			if op, ok := m[method].(map[string]any); ok {
				out = append(out, operation{method: strings.ToUpper(method), path: path, op: op})
			}
		}
	}
	slices.SortFunc(out, func(a, b operation) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// schemaRef returns the component name a schema refers to, or "".
func schemaRef(v any) string {
	m, _ := v.(map[string]any)
	ref, _ := m["$ref"].(string)
	return strings.TrimPrefix(ref, "#/components/schemas/")
}

// templatePath turns a gorilla/mux template into an OpenAPI path:
// /clients/{id:[0-9]+} becomes /clients/{id}.
func templatePath(tpl string) string {
	var b strings.Builder
	depth := 0
	skipping := false
	for _, r := range tpl {
		switch {
		case r == '{':
			depth++
			if depth == 1 {
				b.WriteRune(r)
				continue
			}
		case r == '}':
			depth--
			if depth == 0 {
				skipping = false
				b.WriteRune(r)
				continue
			}
		case r == ':' && depth == 1:
			skipping = true
			continue
		}
		if !skipping {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestTemplatePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/api/v1/clients", "/api/v1/clients"},
		{"/api/v1/clients/{id:[0-9]+}", "/api/v1/clients/{id}"},
		{"/api/v1/clients/{id:[0-9]+}/rotate", "/api/v1/clients/{id}/rotate"},
		{"/api/v1/a/{x:[0-9]{1,3}}/b/{y}", "/api/v1/a/{x}/b/{y}"},
	} {
		if got := templatePath(tc.in); got != tc.want {
			t.Errorf("templatePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// jsonNames lists the JSON member names of struct type t.
func jsonNames(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		tag, ok := f.Tag.Lookup("json")
		if !ok {
			if f.IsExported() {
				out = append(out, f.Name)
			}
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// propertyNames lists the properties of an object schema.
func propertyNames(schema map[string]any) []string {
	props, _ := schema["properties"].(map[string]any)
	out := make([]string, 0, len(props))
	for name := range props {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func without(names, drop []string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(drop, n) })
}

func TestOpenAPIVersion(t *testing.T) {
	d := loadOpenAPI(t)
	v := fmt.Sprint(d.root["openapi"])
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
}

// TestOpenAPIRoutes keeps the document and the router in step: every route
// served is documented under the same method, and every documented
// management operation is served.
func TestOpenAPIRoutes(t *testing.T) {
	d := loadOpenAPI(t)
	served := map[string]bool{}
	for _, r := range New(Options{}).Routes() {
		served[r.Method+" "+templatePath(r.Path)] = true
	}
	if len(served) == 0 {
		t.Fatal("the API serves no routes")
	}
	documented := map[string]bool{}
	for _, o := range d.operations() {
		if strings.HasPrefix(o.path, Prefix+"/") {
			documented[o.String()] = true
		}
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("%s is served but not documented in %s", r, openAPIPath)
		}
	}
	for o := range documented {
		if !served[o] {
			t.Errorf("%s is documented but not served", o)
		}
	}
	// The rest of the public listener's endpoints are documented too.
	for _, o := range []string{
		"POST /oauth/token", "POST /oauth/introspect", "POST /oauth/revoke",
		"GET /.well-known/oauth-authorization-server", "POST /auth/access/session",
	} {
		method, path, _ := strings.Cut(o, " ")
		paths, _ := d.root["paths"].(map[string]any)
		item, _ := paths[path].(map[string]any)
		if item[strings.ToLower(method)] == nil {
			t.Errorf("%s is not documented", o)
		}
	}
}

// TestOpenAPIOperations checks what every operation declares.
func TestOpenAPIOperations(t *testing.T) {
	d := loadOpenAPI(t)
	schemes, _ := d.pointer("#/components/securitySchemes/bearerAuth").(map[string]any)
	if schemes["type"] != "http" || schemes["scheme"] != "bearer" {
		t.Errorf("securitySchemes.bearerAuth = %v, want an http bearer scheme", schemes)
	}
	if !slices.ContainsFunc(asSlice(d.root["security"]), func(v any) bool {
		m, _ := v.(map[string]any)
		_, ok := m["bearerAuth"]
		return ok
	}) {
		t.Errorf("the document's default security does not require bearerAuth")
	}
	ids := map[string]string{}
	for _, o := range d.operations() {
		t.Run(o.String(), func(t *testing.T) {
			if id, _ := o.op["operationId"].(string); id == "" {
				t.Errorf("no operationId")
			} else if other, dup := ids[id]; dup {
				t.Errorf("operationId %q is also %s", id, other)
			} else {
				ids[id] = o.String()
			}
			responses, _ := o.op["responses"].(map[string]any)
			var success, problem4xx bool
			for code, res := range responses {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("response code %q is not a status", code)
					continue
				}
				resolved := d.resolve(res)
				if resolved["description"] == nil {
					t.Errorf("response %s has no description", code)
				}
				success = success || n >= 200 && n < 300
				content, _ := resolved["content"].(map[string]any)
				media, _ := content["application/problem+json"].(map[string]any)
				if n >= 400 && n < 500 && schemaRef(media["schema"]) == "Problem" {
					problem4xx = true
				}
			}
			if !success {
				t.Errorf("no 2xx response")
			}
			if !strings.HasPrefix(o.path, Prefix+"/") {
				return // the OAuth endpoints answer RFC 6749 errors
			}
			if !problem4xx {
				t.Errorf("no 4xx response with an application/problem+json Problem")
			}
			if _, ok := o.op["security"]; ok {
				t.Errorf("overrides the bearerAuth security of the management API")
			}
			for _, want := range []string{"401", "503"} {
				if responses[want] == nil {
					t.Errorf("no %s response", want)
				}
			}
			if strings.Contains(o.path, "{id}") && responses["404"] == nil {
				t.Errorf("no 404 response for a path with an id")
			}
			hasIfMatch := slices.ContainsFunc(asSlice(o.op["parameters"]), func(p any) bool {
				return d.resolve(p)["name"] == "If-Match"
			})
			if o.method == http.MethodPatch && !hasIfMatch {
				t.Errorf("a PATCH without an If-Match parameter")
			}
			if hasIfMatch && responses["412"] == nil {
				t.Errorf("takes If-Match but documents no 412")
			}
			if o.method == http.MethodPatch || o.method == http.MethodGet && strings.HasSuffix(o.path, "{id}") {
				ok := d.resolve(responses["200"])
				headers, _ := ok["headers"].(map[string]any)
				if headers["ETag"] == nil {
					t.Errorf("the 200 response has no ETag header")
				}
			}
		})
	}
}

// TestOpenAPIRequestBodies checks each documented request body against the
// Go type the handler decodes it into.
func TestOpenAPIRequestBodies(t *testing.T) {
	d := loadOpenAPI(t)
	seen := map[string]bool{}
	for _, o := range d.operations() {
		body := d.resolve(o.op["requestBody"])
		if body == nil || !strings.HasPrefix(o.path, Prefix+"/") {
			continue
		}
		t.Run(o.String(), func(t *testing.T) {
			seen[o.String()] = true
			content, _ := body["content"].(map[string]any)
			if len(content) != 1 || content["application/json"] == nil {
				t.Errorf("request body content = %v, want only application/json", keys(content))
			}
			media, _ := content["application/json"].(map[string]any)
			schema := d.resolve(media["schema"])
			if schema["type"] != "object" {
				t.Errorf("request body schema type = %v, want object", schema["type"])
			}
			if schema["additionalProperties"] != false {
				t.Errorf("request body schema does not set additionalProperties: false")
			}
			bt, ok := requestBodies[o.String()]
			if !ok {
				t.Fatalf("no Go input type listed for %s in requestBodies", o)
			}
			for _, r := range bt.refused {
				if !slices.Contains(jsonNames(bt.typ), r) {
					t.Errorf("refused member %q is not a member of %s", r, bt.typ)
				}
			}
			want := without(jsonNames(bt.typ), bt.refused)
			if got := propertyNames(schema); !slices.Equal(got, want) {
				t.Errorf("documented properties = %v, want %v (the json tags of %s)", got, want, bt.typ)
			}
			for _, req := range asSlice(schema["required"]) {
				if !slices.Contains(want, fmt.Sprint(req)) {
					t.Errorf("required %v is not a property", req)
				}
			}
		})
	}
	for op := range requestBodies {
		if !seen[op] {
			t.Errorf("requestBodies lists %s, which documents no JSON request body", op)
		}
	}
}

// TestOpenAPIResponseSchemas checks the documented views against the Go
// types the API writes.
func TestOpenAPIResponseSchemas(t *testing.T) {
	d := loadOpenAPI(t)
	for name, bt := range responseSchemas {
		schema := d.resolve(d.pointer("#/components/schemas/" + name))
		want := without(jsonNames(bt.typ), bt.refused)
		if got := propertyNames(schema); !slices.Equal(got, want) {
			t.Errorf("schema %s properties = %v, want %v (the json tags of %s)", name, got, want, bt.typ)
		}
	}
	errs := d.resolve(d.pointer("#/components/schemas/Problem/properties/errors/items"))
	if got, want := propertyNames(errs), jsonNames(reflect.TypeFor[fieldError]()); !slices.Equal(got, want) {
		t.Errorf("Problem errors[] properties = %v, want %v", got, want)
	}
	// The secret-bearing answer adds exactly what Credential leaves out.
	var extra []string
	for _, part := range asSlice(d.resolve(d.pointer("#/components/schemas/CredentialWithSecret"))["allOf"]) {
		if schemaRef(part) == "" {
			extra = append(extra, propertyNames(d.resolve(part))...)
		}
	}
	slices.Sort(extra)
	if want := responseSchemas["Credential"].refused; !slices.Equal(extra, slices.Sorted(slices.Values(want))) {
		t.Errorf("CredentialWithSecret adds %v, want %v", extra, want)
	}
}

// TestOpenAPIRefs checks that every $ref of the document resolves.
func TestOpenAPIRefs(t *testing.T) {
	d := loadOpenAPI(t)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				d.pointer(ref)
			}
			for _, child := range v {
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(d.root)
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPINoEmptyValues catches what an unquoted comma in a flow-style
// mapping does: `{description: a, b}` makes `b` a member with no value (a
// bogus property, when it sits in a schema). The document has no null
// values otherwise. CI also lints it with Redocly CLI (make lint-openapi).
func TestOpenAPINoEmptyValues(t *testing.T) {
	d := loadOpenAPI(t)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if child == nil {
					t.Errorf("%s/%s has no value (an unquoted comma in a flow mapping?)", path, k)
				}
				walk(path+"/"+k, child)
			}
		case []any:
			for i, child := range v {
				walk(path+"/"+strconv.Itoa(i), child)
			}
		}
	}
	walk("#", d.root)
}
