package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/tollgate/tollgate/pkg/client"
)

// A management client's id and secret are exchanged for a token, fetched
// again when it expires.
func ExampleNew() {
	tg, err := client.New("https://auth.example.com",
		client.WithClientCredentials(os.Getenv("TOLLGATE_CLIENT_ID"), os.Getenv("TOLLGATE_CLIENT_SECRET")))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	key, err := tg.CreateKey(ctx, client.CredentialCreate{Name: "reporting", AccessRights: "events"})
	if err != nil {
		log.Fatal(err)
	}
	// The key string is shown this once: hand it over now.
	fmt.Println(key.Key)
}

// A parent account's management client acts on one child account only:
// its token, exchanged for that account (RFC 8693), can reach nothing
// above or beside it.
func ExampleClient_ForAccount() {
	tg, err := client.New("https://auth.example.com",
		client.WithClientCredentials(os.Getenv("TOLLGATE_CLIENT_ID"), os.Getenv("TOLLGATE_CLIENT_SECRET")))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	child, err := tg.ForAccount(ctx, 42)
	if err != nil {
		log.Fatal(err)
	}
	keys, err := child.ListKeys(ctx, client.CredentialFilter{AccountID: 42, Subtree: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(keys.Items))
}

// Pages follow one another through Next.
func ExampleClient_ListUsers() {
	tg, err := client.New("https://auth.example.com", client.WithToken(os.Getenv("TOLLGATE_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	f := client.UserFilter{Page: client.Page{Limit: 100}}
	for {
		page, err := tg.ListUsers(context.Background(), f)
		if err != nil {
			log.Fatal(err)
		}
		for _, u := range page.Items {
			fmt.Println(u.ID, u.Username, u.Role)
		}
		if page.Next == 0 {
			break
		}
		f.After = page.Next
	}
}

// A change made under If-Match is refused when the record changed since
// it was read.
func ExampleIsPreconditionFailed() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusPreconditionFailed)
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": "Precondition Failed", "status": 412,
			"detail": "The resource changed since you read it (If-Match: " + r.Header.Get("If-Match") + ")."})
	}))
	defer srv.Close()
	tg, err := client.New(srv.URL, client.WithToken("a token"))
	if err != nil {
		log.Fatal(err)
	}
	_, err = tg.UpdateAccount(context.Background(), 7, client.AccountUpdate{Name: new("renamed"), IfMatch: "3"})
	fmt.Println(client.IsPreconditionFailed(err), client.IsNotFound(err))
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.StatusCode, e.Detail)
	}
	// Output:
	// true false
	// 412 The resource changed since you read it (If-Match: "3").
}

// Invalid fields are named one by one.
func ExampleError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprint(w, `{"type":"about:blank","title":"Unprocessable Entity","status":422,"detail":"Some fields are invalid.",`+
			`"errors":[{"field":"password","detail":"must be at least 12 bytes"}]}`)
	}))
	defer srv.Close()
	tg, err := client.New(srv.URL, client.WithToken("a token"))
	if err != nil {
		log.Fatal(err)
	}
	_, err = tg.CreateUser(context.Background(), client.UserCreate{Username: "mia", Password: "short"})
	var e *client.Error
	if errors.As(err, &e) && client.IsInvalid(err) {
		for _, f := range e.Fields {
			fmt.Printf("%s: %s\n", f.Field, f.Detail)
		}
	}
	// Output:
	// password: must be at least 12 bytes
}
