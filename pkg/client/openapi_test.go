package client

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// sdkMethods maps each management operation of docs/openapi.yaml to the
// Client method that calls it.
var sdkMethods = map[string]string{
	"createAccount": "CreateAccount", "getAccount": "GetAccount", "updateAccount": "UpdateAccount",
	"listAccountChildren": "ListAccountChildren",
	"createUser":          "CreateUser", "listUsers": "ListUsers", "getUser": "GetUser", "updateUser": "UpdateUser",
	"deleteUser": "DeleteUser", "setUserPassword": "SetPassword",
	"createClient": "CreateClient", "listClients": "ListClients", "getClient": "GetClient", "updateClient": "UpdateClient",
	"deleteClient": "DeleteClient", "rotateClient": "RotateClient", "createClientToken": "CreateClientToken",
	"createKey": "CreateKey", "listKeys": "ListKeys", "getKey": "GetKey", "updateKey": "UpdateKey",
	"deleteKey": "DeleteKey", "rotateKey": "RotateKey",
	"listAudit":                 "ListAudit",
	"getUsage":                  "GetUsage",
	"createFederatedCredential": "CreateFederatedCredential", "listFederatedCredentials": "ListFederatedCredentials",
	"deleteFederatedCredential": "DeleteFederatedCredential",
	"createWebhook":             "CreateWebhook", "listWebhooks": "ListWebhooks", "getWebhook": "GetWebhook",
	"updateWebhook": "UpdateWebhook", "deleteWebhook": "DeleteWebhook", "rotateWebhookSecret": "RotateWebhookSecret",
	"testWebhook": "TestWebhook", "listWebhookDeliveries": "ListWebhookDeliveries",
}

// TestEveryOperationHasAMethod fails when the management API gains an
// operation the SDK does not call.
func TestEveryOperationHasAMethod(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	var ops []string
	for path, item := range doc.Paths {
		if !strings.HasPrefix(path, APIPrefix+"/") {
			continue
		}
		for _, op := range item {
			if m, ok := op.(map[string]any); ok {
				if id, ok := m["operationId"].(string); ok {
					ops = append(ops, id)
				}
			}
		}
	}
	if len(ops) == 0 {
		t.Fatal("no management operation found in openapi.yaml")
	}
	typ := reflect.TypeFor[*Client]()
	for _, op := range ops {
		name, ok := sdkMethods[op]
		if !ok {
			t.Errorf("operation %s has no Client method", op)
			continue
		}
		if _, ok := typ.MethodByName(name); !ok {
			t.Errorf("operation %s: Client has no method %s", op, name)
		}
	}
	for op := range sdkMethods {
		if !slices.Contains(ops, op) {
			t.Errorf("sdkMethods names %s, which openapi.yaml does not hold", op)
		}
	}
}
