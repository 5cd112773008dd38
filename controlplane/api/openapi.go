package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/pki/admission"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
)

// The OpenAPI 3 description of the API, built from the same route and kind tables that the mux
// is built from, so that it cannot list a route the API lacks.

type jmap = map[string]any

func schemaRef(name string) jmap   { return jmap{"$ref": "#/components/schemas/" + name} }
func paramRef(name string) jmap    { return jmap{"$ref": "#/components/parameters/" + name} }
func responseRef(name string) jmap { return jmap{"$ref": "#/components/responses/" + name} }
func str(desc string) jmap         { return jmap{"type": "string", "description": desc} }
func revisionSchema(desc string) jmap {
	return jmap{"type": "integer", "format": "int64", "minimum": 0, "description": desc}
}

// Maps and arrays are nullable: the API reads null as absent, as encoding/json does.
func array(items jmap) jmap { return jmap{"type": "array", "items": items, "nullable": true} }
func stringMap(desc string) jmap {
	return jmap{"type": "object", "additionalProperties": jmap{"type": "string"}, "description": desc, "nullable": true}
}

// object is a closed object schema: unknown fields are rejected, as the API does.
func object(required []string, props jmap) jmap {
	o := jmap{"type": "object", "additionalProperties": false, "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func jsonContent(schema jmap) jmap { return jmap{"application/json": jmap{"schema": schema}} }

func schemas() jmap {
	s := jmap{
		"Metadata": object([]string{"name"}, jmap{
			"name":             jmap{"type": "string", "maxLength": model.MaxDSNIDLength, "description": "lowercase DNS label (DSNs: their id)"},
			"tenant":           jmap{"type": "string", "maxLength": model.MaxNameLength, "description": "the tenant of a Network or Policy"},
			"labels":           stringMap("labels: keys with an optional DNS prefix, values of at most 63 characters"),
			"resourceVersion":  jmap{"type": "string", "pattern": "^[0-9]*$", "description": "revision of the last write; a write that carries it is compare-and-swap"},
			"creationRevision": revisionSchema("revision that created the object"),
		}),
		"TenantSpec": object(nil, jmap{"displayName": jmap{"type": "string", "maxLength": model.MaxTextLength}}),
		"NetworkSpec": object([]string{"cidr", "vlan"}, jmap{
			"cidr": str("IPv4 or IPv6 prefix with no host bits set, such as 10.0.0.0/24"),
			"vlan": jmap{"type": "integer", "minimum": 1, "maximum": 4094},
		}),
		"Selector": object(nil, jmap{"matchLabels": stringMap("label equality; empty selects every DSN")}),
		"Peer": object(nil, jmap{
			"network": str("a network of the policy's tenant"),
			"labels":  stringMap("endpoints chosen by labels"),
		}),
		"Rule": object([]string{"action"}, jmap{
			"action":   jmap{"type": "string", "enum": []string{"allow", "deny"}},
			"from":     schemaRef("Peer"),
			"to":       schemaRef("Peer"),
			"protocol": jmap{"type": "string", "enum": []string{"", "tcp", "udp", "icmp", "any"}},
			"ports": jmap{"type": "array", "nullable": true, "maxItems": model.MaxPortsPerRule, "items": jmap{"oneOf": []any{
				jmap{"type": "integer", "minimum": 1, "maximum": 65535},
				jmap{"type": "string", "pattern": "^[0-9]{1,5}(-[0-9]{1,5})?$"},
			}}},
		}),
		"PolicySpec": object(nil, jmap{
			"selector": schemaRef("Selector"),
			"rules":    jmap{"type": "array", "nullable": true, "maxItems": model.MaxRules, "items": schemaRef("Rule")},
		}),
		"DSNSpec": object(nil, jmap{"softwareVersion": str(""), "site": str(""), "rack": str("")}),
		"RevisionAck": object([]string{"revision", "at"}, jmap{
			"revision": revisionSchema(""), "at": str("RFC 3339 time"),
		}),
		"CorrectiveCount": object(nil, jmap{
			"resends": jmap{"type": "integer"}, "resyncs": jmap{"type": "integer"}, "quarantines": jmap{"type": "integer"},
		}),
		"DSNStatus": object([]string{"state", "desiredRevision", "appliedRevision"}, jmap{
			"state":             jmap{"type": "string", "enum": []string{"", model.DSNStateAdmitted, model.DSNStateSyncing, model.DSNStateInSync, model.DSNStateLagging, model.DSNStateQuarantined, model.DSNStateOffline}},
			"desiredRevision":   revisionSchema(""),
			"appliedRevision":   revisionSchema(""),
			"lastHeartbeat":     str("RFC 3339 time"),
			"admittedAt":        str("RFC 3339 time"),
			"sessionID":         str(""),
			"ackTimes":          array(schemaRef("RevisionAck")),
			"corrective":        schemaRef("CorrectiveCount"),
			"lastCorrective":    str("resend, resync or quarantine"),
			"connectedSeconds":  jmap{"type": "number"},
			"lastError":         str("the error of the last Ack that reported one, until an Ack without error or a new session"),
			"lastErrorRevision": revisionSchema("the revision the DSN failed to apply"),
			"lastErrorAt":       str("RFC 3339 time"),
		}),
		"ListMeta": object(nil, jmap{
			"revision": revisionSchema("store revision the page was read at"),
			"continue": str("token for the next page; absent on the last"),
		}),
		"FieldError": object([]string{"field", "message"}, jmap{"field": str("field path"), "message": str("")}),
		"Error": object([]string{"code", "reason", "message"}, jmap{
			"code":    jmap{"type": "integer", "description": "the HTTP status"},
			"reason":  str("NotFound, Conflict, Invalid, ..."),
			"message": str(""),
			"field":   str("path of the first field at fault"),
			"details": array(schemaRef("FieldError")),
		}),
		"Status": object([]string{"status"}, jmap{"status": str("ok or ready")}),
		"Revision": object([]string{"revision", "compactedRevision"}, jmap{
			"revision":          revisionSchema("revision of the last committed change"),
			"compactedRevision": revisionSchema("history at or below it is gone"),
		}),
		"Convergence": object([]string{"revision", "total", "atOrPast", "behind", "behindDSNs"}, jmap{
			"revision":     revisionSchema(""),
			"total":        jmap{"type": "integer"},
			"atOrPast":     jmap{"type": "integer"},
			"behind":       jmap{"type": "integer"},
			"behindDSNs":   array(jmap{"type": "string"}),
			"ackLatencyMs": jmap{"type": "object", "additionalProperties": jmap{"type": "number"}},
		}),
		"AnyObject": jmap{"anyOf": []any{schemaRef("Tenant"), schemaRef("Network"), schemaRef("Policy")}},
		"TransactionRequest": object([]string{"operations"}, jmap{
			"operations": jmap{"type": "array", "minItems": 1, "maxItems": MaxTransactionOps, "items": object([]string{"op", "object"}, jmap{
				"op":     jmap{"type": "string", "enum": []string{"create", "update", "delete"}},
				"object": schemaRef("AnyObject"),
			})},
		}),
		"TransactionResponse": object([]string{"revision", "results"}, jmap{
			"revision": revisionSchema("revision of the transaction's last operation"),
			"dryRun":   jmap{"type": "boolean"},
			"results": array(object([]string{"op", "object"}, jmap{
				"op": jmap{"type": "string"}, "object": schemaRef("AnyObject"),
			})),
		}),
		"WatchEvent": object([]string{"revision", "type", "object"}, jmap{
			"revision": revisionSchema(""),
			"type":     jmap{"type": "string", "enum": []string{eventAdded, eventModified, eventDeleted}},
			"object":   schemaRef("AnyObject"),
		}),
	}
	for k, v := range securitySchemas() {
		s[k] = v
	}
	for _, kind := range []model.Kind{model.KindTenant, model.KindNetwork, model.KindPolicy, model.KindDSN} {
		status := jmap{"type": "object", "description": "set by the control plane only", "maxProperties": 0}
		if kind == model.KindDSN {
			status = schemaRef("DSNStatus")
		}
		specRequired := []string{"apiVersion", "kind", "metadata"}
		if kind == model.KindNetwork || kind == model.KindPolicy {
			specRequired = append(specRequired, "spec")
		}
		s[string(kind)] = object(specRequired, jmap{
			"apiVersion": jmap{"type": "string", "enum": []string{model.APIVersion}},
			"kind":       jmap{"type": "string", "enum": []string{string(kind)}},
			"metadata":   schemaRef("Metadata"),
			"spec":       schemaRef(string(kind) + "Spec"),
			"status":     status,
		})
		s[string(kind)+"List"] = object([]string{"apiVersion", "kind", "metadata", "items"}, jmap{
			"apiVersion": jmap{"type": "string", "enum": []string{model.APIVersion}},
			"kind":       jmap{"type": "string", "enum": []string{string(kind) + "List"}},
			"metadata":   schemaRef("ListMeta"),
			"items":      array(schemaRef(string(kind))),
		})
	}
	return s
}

func parameters() jmap {
	q := func(name, desc string, schema jmap) jmap {
		return jmap{"name": name, "in": "query", "required": false, "description": desc, "schema": schema}
	}
	p := func(name, desc string) jmap {
		return jmap{"name": name, "in": "path", "required": true, "description": desc, "schema": jmap{"type": "string"}}
	}
	ps := jmap{
		"tenant":          p("tenant", "tenant name"),
		"name":            p("name", "object name"),
		"id":              p("id", "DSN id"),
		"limit":           q("limit", "page size; absent for all", jmap{"type": "integer", "minimum": 0, "maximum": MaxListLimit}),
		"continue":        q("continue", "token from the previous page", jmap{"type": "string"}),
		"labelSelector":   q("labelSelector", "k=v,k2=v2 (label equality)", jmap{"type": "string"}),
		"dryRun":          q("dryRun", "validate fully, store nothing", jmap{"type": "boolean"}),
		"resourceVersion": q("resourceVersion", "delete only at this revision", jmap{"type": "string", "pattern": "^[0-9]+$"}),
		"fromRevision":    q("fromRevision", "deliver changes after this revision (default: now)", jmap{"type": "integer", "minimum": 0}),
		"watchKind":       q("kind", "only this kind", jmap{"type": "string", "enum": []string{"Tenant", "Network", "Policy"}}),
		"watchTenant":     q("tenant", "only this tenant and its objects", jmap{"type": "string"}),
		"revision":        q("revision", "revision to report on (default: the current one)", jmap{"type": "integer", "minimum": 0}),
	}
	for k, v := range securityParameters(q, p) {
		ps[k] = v
	}
	return ps
}

// op describes one operation for the document.
type op struct {
	id, summary string
	params      []string
	body        string // schema name of the JSON request body, if any
	ok          int
	okSchema    string // schema name of the JSON answer; "" for an answer without a body
	okAlso      []int  // other success statuses with the same answer
	errors      []int
	// public operations are served without a token; the others answer 401 without one.
	public bool
	tag    string
}

func (o op) build() jmap {
	out := jmap{"operationId": o.id, "summary": o.summary}
	if o.tag != "" {
		out["tags"] = []string{o.tag}
	}
	if o.public {
		out["security"] = []any{}
	}
	if len(o.params) > 0 {
		ps := make([]any, len(o.params))
		for i, p := range o.params {
			ps[i] = paramRef(p)
		}
		out["parameters"] = ps
	}
	if o.body != "" {
		out["requestBody"] = jmap{"required": true, "content": jsonContent(schemaRef(o.body))}
	}
	resp := jmap{}
	for _, code := range append([]int{o.ok}, o.okAlso...) {
		r := jmap{"description": http.StatusText(code)}
		if o.okSchema != "" {
			r["content"] = jsonContent(schemaRef(o.okSchema))
		}
		resp[strconv.Itoa(code)] = r
	}
	for _, code := range o.errors {
		resp[strconv.Itoa(code)] = responseRef("Error")
	}
	if !o.public {
		resp["401"] = responseRef("Error")
	}
	resp["default"] = responseRef("Error")
	out["responses"] = resp
	return out
}

var (
	readErrors  = []int{400, 404, 429, 503}
	writeErrors = []int{400, 404, 409, 413, 415, 422, 429, 503}
)

func paths() jmap {
	ps := jmap{}
	add := func(path, method string, o op) {
		item, _ := ps[path].(jmap)
		if item == nil {
			item = jmap{}
			ps[path] = item
		}
		item[strings.ToLower(method)] = o.build()
	}
	for _, kind := range objectKinds {
		k := string(kind)
		coll, item := collectionPath(kind), itemPath(kind)
		var scope []string
		if kind.Namespaced() {
			scope = []string{"tenant"}
		}
		listParams := append(append([]string{}, scope...), "limit", "continue", "labelSelector")
		add(coll, http.MethodGet, op{id: "list" + k, summary: "List " + plural(kind), params: listParams, ok: 200, okSchema: k + "List", errors: readErrors})
		add(coll, http.MethodPost, op{id: "create" + k, summary: "Create a " + k, params: append(append([]string{}, scope...), "dryRun"), body: k, ok: 201, okSchema: k, errors: writeErrors})
		itemParams := append(append([]string{}, scope...), "name")
		add(item, http.MethodGet, op{id: "get" + k, summary: "Get a " + k, params: itemParams, ok: 200, okSchema: k, errors: readErrors})
		add(item, http.MethodPut, op{id: "update" + k, summary: "Replace a " + k + " (compare-and-swap when metadata.resourceVersion is set)", params: append(append([]string{}, itemParams...), "dryRun"), body: k, ok: 200, okSchema: k, errors: writeErrors})
		add(item, http.MethodDelete, op{id: "delete" + k, summary: "Delete a " + k, params: append(append([]string{}, itemParams...), "dryRun", "resourceVersion"), ok: 200, okSchema: k, errors: writeErrors})
		if kind.Namespaced() {
			add(prefix+"/"+plural(kind), http.MethodGet, op{id: "list" + k + "AllTenants", summary: "List " + plural(kind) + " of every tenant", params: []string{"limit", "continue", "labelSelector"}, ok: 200, okSchema: k + "List", errors: readErrors})
		}
	}
	add(pathDSNs, http.MethodGet, op{id: "listDSNs", summary: "List DSNs", params: []string{"limit", "continue", "labelSelector"}, ok: 200, okSchema: "DSNList", errors: []int{400, 429, 501, 503}})
	add(pathDSN, http.MethodGet, op{id: "getDSN", summary: "Get a DSN", params: []string{"id"}, ok: 200, okSchema: "DSN", errors: []int{400, 404, 429, 501, 503}})
	add(pathDSN, http.MethodPut, op{id: "setDSNLabels", summary: "Replace a DSN's labels (its tenant is fixed at admission); a live DSN is resynchronised to its new view", params: []string{"id", "dryRun"}, body: "DSNLabels", ok: 200, okSchema: "DSN", errors: []int{400, 404, 413, 422, 429, 501, 503}})
	add(pathDSN, http.MethodDelete, op{id: "decommissionDSN", summary: "Decommission a DSN", params: []string{"id", "dryRun"}, ok: 200, okSchema: "DSN", errors: []int{400, 404, 429, 501, 503}})
	add(pathTransactions, http.MethodPost, op{id: "transaction", summary: "Commit operations all or nothing", params: []string{"dryRun"}, body: "TransactionRequest", ok: 200, okSchema: "TransactionResponse", errors: writeErrors})
	add(pathConvergence, http.MethodGet, op{id: "convergence", summary: "How many DSNs applied a revision", params: []string{"revision"}, ok: 200, okSchema: "Convergence", errors: []int{400, 429, 501, 503}})
	add(pathRevision, http.MethodGet, op{id: "revision", summary: "The store's current revision", ok: 200, okSchema: "Revision", errors: []int{429}})
	add("/healthz", http.MethodGet, op{id: "healthz", summary: "The process is alive", ok: 200, okSchema: "Status", public: true})
	add("/readyz", http.MethodGet, op{id: "readyz", summary: "The control plane can serve", ok: 200, okSchema: "Status", errors: []int{503}, public: true})
	for _, r := range securityRoutes() {
		add(r.path, r.method, r.op)
	}

	ps[pathWatch] = jmap{"get": jmap{
		"operationId": "watch",
		"summary":     "Stream changes after a revision as server-sent events (id: revision; event: ADDED, MODIFIED, DELETED or ERROR; data: a WatchEvent). Honours Last-Event-ID.",
		"parameters":  []any{paramRef("fromRevision"), paramRef("watchKind"), paramRef("watchTenant")},
		"responses": jmap{
			"200":     jmap{"description": "an event stream; each data line is a WatchEvent", "content": jmap{"text/event-stream": jmap{"schema": jmap{"type": "string"}}}},
			"400":     responseRef("Error"),
			"401":     responseRef("Error"),
			"410":     responseRef("Error"),
			"default": responseRef("Error"),
		},
	}}
	ps[pathOpenAPI] = jmap{"get": jmap{
		"operationId": "openapi",
		"summary":     "This document",
		"responses":   jmap{"200": jmap{"description": "OpenAPI 3 document", "content": jsonContent(jmap{"type": "object"})}, "401": responseRef("Error")},
	}}
	ps["/metrics"] = jmap{"get": jmap{
		"operationId": "metrics",
		"summary":     "Prometheus metrics",
		"responses":   jmap{"200": jmap{"description": "Prometheus text format", "content": jmap{"text/plain": jmap{"schema": jmap{"type": "string"}}}}, "401": responseRef("Error")},
	}}
	return ps
}

// buildOpenAPI renders the OpenAPI 3 document.
func buildOpenAPI() ([]byte, error) {
	doc := jmap{
		"openapi": "3.0.3",
		"info": jmap{
			"title":   "dsnscale reference control plane",
			"version": model.APIVersion,
			"description": "Northbound API: tenants, networks and policies, DSNs, transactions, watch and convergence; " +
				"with security on (the default), login, users, roles and role bindings, bootstrap tokens, DSN admission and the audit trail. " +
				"Every route but login, admission and the health checks then needs the token that login gives, as a bearer token; " +
				"a control plane run without security serves the object routes without one and lacks the security routes.",
		},
		"security": []any{jmap{bearerScheme: []any{}}},
		"paths":    paths(),
		"components": jmap{
			"schemas":         schemas(),
			"parameters":      parameters(),
			"securitySchemes": jmap{bearerScheme: jmap{"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "the token of POST " + pathLogin}},
			"responses": jmap{"Error": jmap{
				"description": "an error: code, reason, message and the field at fault",
				"content":     jsonContent(schemaRef("Error")),
			}},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("api: rendering the OpenAPI document: %w", err)
	}
	return b, nil
}

// The security routes: package controlplane serves them in front of the API when security is
// on (login, users, RBAC, bootstrap tokens, admission, audit), with the handlers of packages
// authn, rbac, admission and audit. They are described here so that clients see one API.

// bearerScheme names the security scheme of the login token.
const bearerScheme = "bearerAuth"

// Paths of the security routes.
const (
	pathLogin           = rbac.APIPrefix + "/login"
	pathLogout          = rbac.APIPrefix + "/logout"
	pathUsers           = rbac.APIPrefix + "/users"
	pathUser            = pathUsers + "/{name}"
	pathRoles           = rbac.APIPrefix + "/roles"
	pathRole            = pathRoles + "/{name}"
	pathRoleBindings    = rbac.APIPrefix + "/rolebindings"
	pathRoleBinding     = pathRoleBindings + "/{name}"
	pathBootstrapTokens = rbac.APIPrefix + "/bootstraptokens"
	pathBootstrapToken  = pathBootstrapTokens + "/{id}"
	pathAudit           = rbac.APIPrefix + "/audit"
)

// Tags of the security operations.
const (
	tagAuth      = "authentication"
	tagRBAC      = "rbac"
	tagAdmission = "admission"
	tagAudit     = "audit"
)

// Verdicts of audit records (package audit's Verdict constants).
var auditVerdicts = []string{"allowed", "denied", "unauthenticated", "limited"}

func verbNames() []string {
	out := make([]string, len(rbac.Verbs))
	for i, v := range rbac.Verbs {
		out[i] = string(v)
	}
	return out
}

func timeSchema(desc string) jmap {
	return jmap{"type": "string", "format": "date-time", "description": desc}
}

func securitySchemas() jmap {
	userName := jmap{"type": "string", "minLength": 1, "maxLength": authn.MaxNameLen, "pattern": `^[A-Za-z0-9][A-Za-z0-9.@+_-]*$`}
	password := jmap{"type": "string", "format": "password", "minLength": authn.MinPasswordLen, "maxLength": authn.MaxPasswordLen}
	groups := jmap{"type": "array", "nullable": true, "maxItems": authn.MaxGroups, "items": userName}
	list := func(item string) jmap { return object([]string{"items"}, jmap{"items": array(schemaRef(item))}) }
	ruleList := func(values []string, desc string) jmap {
		items := jmap{"type": "string"}
		if values != nil {
			items["enum"] = append(append([]string{}, values...), rbac.Any)
		}
		return jmap{"type": "array", "nullable": true, "minItems": 1, "maxItems": rbac.MaxItems, "items": items, "description": desc}
	}
	verbs := verbNames()
	tokenFields := jmap{
		"role":        jmap{"type": "string", "enum": []string{"", admission.RoleDSN, admission.RoleGateway}, "description": "what the token admits (default dsn)"},
		"tenant":      str("the tenant of the DSNs it admits; required for DSN tokens, absent for gateway tokens"),
		"labels":      stringMap("labels given to every DSN it admits"),
		"dsn":         str("the only identity name it admits"),
		"description": jmap{"type": "string", "maxLength": admission.MaxDescriptionLen},
	}
	spec := jmap{
		"ttlSeconds": jmap{"type": "integer", "format": "int64", "minimum": 0, "maximum": int64(admission.MaxTokenTTL / time.Second), "description": "lifetime; 0 means the default"},
		"uses":       jmap{"type": "integer", "minimum": 0, "maximum": admission.MaxUses, "description": "admissions allowed; 0 means 1"},
	}
	view := jmap{
		"id":         str("the token's id (not its secret)"),
		"uses":       jmap{"type": "integer"},
		"used":       jmap{"type": "integer"},
		"createdAt":  timeSchema(""),
		"createdBy":  str("the user who made it"),
		"expiresAt":  timeSchema(""),
		"revokedAt":  timeSchema(""),
		"lastUsedBy": str("the identity it last admitted"),
		"lastUsedAt": timeSchema(""),
		"state":      jmap{"type": "string", "enum": []string{admission.StateActive, admission.StateExpired, admission.StateRevoked, admission.StateExhausted}},
	}
	for k, v := range tokenFields {
		spec[k], view[k] = v, v
	}
	userFields := func(required ...string) jmap {
		return object(required, jmap{
			"name":     userName,
			"password": password,
			"groups":   groups,
			"disabled": jmap{"type": "boolean"},
		})
	}
	return jmap{
		"DSNLabels":     object([]string{"labels"}, jmap{"labels": jmap{"type": "object", "additionalProperties": jmap{"type": "string"}}}),
		"LoginRequest":  object([]string{"user", "password"}, jmap{"user": jmap{"type": "string", "minLength": 1}, "password": jmap{"type": "string", "format": "password", "minLength": 1}}),
		"LoginResponse": object([]string{"token", "expiresAt"}, jmap{"token": str("a JWT to send as Authorization: Bearer <token>"), "expiresAt": timeSchema("")}),
		"NewUser":       userFields("name", "password"),
		"UserUpdate":    userFields(),
		"User": object([]string{"name", "groups", "createdAt", "updatedAt"}, jmap{
			"name": userName, "groups": groups, "disabled": jmap{"type": "boolean"},
			"createdAt": timeSchema(""), "updatedAt": timeSchema(""),
		}),
		"UserList": list("User"),
		"RBACRule": object([]string{"verbs", "kinds", "tenants"}, jmap{
			"verbs":   ruleList(verbs, ""),
			"kinds":   ruleList(rbac.Kinds, ""),
			"tenants": ruleList(nil, "tenant names, or * for every tenant and the cluster-wide objects"),
		}),
		"Role": object([]string{"name", "rules"}, jmap{
			"name":  jmap{"type": "string", "maxLength": model.MaxNameLength},
			"rules": jmap{"type": "array", "nullable": true, "minItems": 1, "maxItems": rbac.MaxRules, "items": schemaRef("RBACRule")},
		}),
		"RoleList": list("Role"),
		"Subject": object([]string{"kind", "name"}, jmap{
			"kind": jmap{"type": "string", "enum": []string{rbac.SubjectUser, rbac.SubjectGroup}},
			"name": userName,
		}),
		"RoleBinding": object([]string{"name", "role", "subjects"}, jmap{
			"name":     jmap{"type": "string", "maxLength": model.MaxNameLength},
			"role":     jmap{"type": "string", "maxLength": model.MaxNameLength},
			"subjects": jmap{"type": "array", "nullable": true, "minItems": 1, "maxItems": rbac.MaxSubjects, "items": schemaRef("Subject")},
		}),
		"RoleBindingList":    list("RoleBinding"),
		"BootstrapTokenSpec": object(nil, spec),
		"BootstrapToken":     object([]string{"id", "role", "uses", "used", "createdAt", "expiresAt", "state"}, view),
		"BootstrapTokenList": list("BootstrapToken"),
		"CreatedBootstrapToken": object([]string{"token", "bootstrapToken"}, jmap{
			"token":          str("the secret a DSN presents to POST " + admission.AdmitPath + "; shown this once"),
			"bootstrapToken": schemaRef("BootstrapToken"),
		}),
		"AdmitRequest": object([]string{"token", "dsn", "csr"}, jmap{
			"token":  jmap{"type": "string", "minLength": 1, "description": "the bootstrap token's secret"},
			"dsn":    jmap{"type": "string", "minLength": 1, "maxLength": model.MaxDSNIDLength, "description": "the DSN id (or gateway name) to admit"},
			"labels": stringMap("the DSN's labels; the token's win over them"),
			"csr":    jmap{"type": "string", "minLength": 1, "description": "PEM certificate signing request for the DSN's own key"},
		}),
		"AdmitResponse": object([]string{"certificate", "ca", "notAfter", "role", "labels"}, jmap{
			"certificate": str("the identity's certificate (PEM)"),
			"ca":          str("the root to trust the bus and the API with (PEM)"),
			"notAfter":    timeSchema("when the certificate expires: renew it over the bus before"),
			"role":        jmap{"type": "string", "enum": []string{pki.RoleDSN, pki.RoleGateway}},
			"tenant":      str(""),
			"labels":      stringMap(""),
		}),
		"AuditRecord": object([]string{"id", "time", "method", "path", "status", "verdict", "durationMs"}, jmap{
			"id": str(""), "time": timeSchema(""), "user": str(""), "source": str("address the call came from"),
			"method": str(""), "path": str(""), "verb": str(""), "kind": str(""), "tenant": str(""), "name": str(""),
			"status":     jmap{"type": "integer", "description": "the HTTP status of the answer"},
			"verdict":    jmap{"type": "string", "enum": auditVerdicts},
			"binding":    str("the role binding that allowed the call"),
			"reason":     str("why the call was refused"),
			"durationMs": jmap{"type": "number"},
		}),
		"AuditResult": object([]string{"items", "total"}, jmap{
			"items":     array(schemaRef("AuditRecord")),
			"total":     jmap{"type": "integer", "description": "how many records matched"},
			"truncated": jmap{"type": "boolean", "description": "more matched than one search reads: the records are the earliest matches, and total counts those read"},
		}),
	}
}

func securityParameters(q func(name, desc string, schema jmap) jmap, p func(name, desc string) jmap) jmap {
	verbs := verbNames()
	exact := func(name, desc string) jmap { return q(name, desc, jmap{"type": "string"}) }
	return jmap{
		"tokenID":      p("id", "bootstrap token id"),
		"tokenTenant":  exact("tenant", "only this tenant's tokens"),
		"auditUser":    exact("user", "only this user's calls"),
		"auditKind":    exact("kind", "only calls on this kind"),
		"auditVerb":    q("verb", "only calls with this verb", jmap{"type": "string", "enum": verbs}),
		"auditTenant":  exact("tenant", "only calls in this tenant"),
		"auditVerdict": q("verdict", "only calls with this verdict", jmap{"type": "string", "enum": auditVerdicts}),
		"auditFrom":    q("from", "only calls at or after this time (RFC 3339)", jmap{"type": "string", "format": "date-time"}),
		"auditTo":      q("to", "only calls at or before this time (RFC 3339)", jmap{"type": "string", "format": "date-time"}),
		"auditText":    exact("text", "words that must all occur in the record's summary"),
		"auditQ":       exact("q", "the same as text (give one of them)"),
		"auditLimit":   q("limit", "the most records returned (default 100)", jmap{"type": "integer", "minimum": 1}),
	}
}

// securityRoute is one operation of the security routes.
type securityRoute struct {
	path, method string
	op           op
}

func securityRoutes() []securityRoute {
	crud := []int{400, 404, 409, 413, 422, 429, 503}
	reads := []int{403, 404, 429, 503}
	rs := []securityRoute{
		{pathLogin, http.MethodPost, op{id: "login", summary: "Log in with a user and password for a bearer token", body: "LoginRequest", ok: 200, okSchema: "LoginResponse",
			errors: []int{400, 401, 413, 429, 503}, public: true, tag: tagAuth}},
		{pathLogout, http.MethodPost, op{id: "logout", summary: "Revoke the token the request carries", ok: 204, errors: []int{400, 429, 503}, tag: tagAuth}},
		{admission.AdmitPath, http.MethodPost, op{id: "admit", summary: "Exchange a bootstrap token and a CSR for a DSN's certificate", body: "AdmitRequest", ok: 200, okSchema: "AdmitResponse",
			errors: []int{400, 401, 413, 422, 429, 503}, public: true, tag: tagAdmission}},
		{pathBootstrapTokens, http.MethodPost, op{id: "createBootstrapToken", summary: "Create a bootstrap token; its secret is in this answer only", body: "BootstrapTokenSpec", ok: 201, okSchema: "CreatedBootstrapToken",
			errors: []int{400, 403, 413, 422, 429, 503}, tag: tagAdmission}},
		{pathBootstrapTokens, http.MethodGet, op{id: "listBootstrapTokens", summary: "List the bootstrap tokens of the tenants the caller may see", params: []string{"tokenTenant"}, ok: 200, okSchema: "BootstrapTokenList",
			errors: []int{403, 429, 503}, tag: tagAdmission}},
		{pathBootstrapToken, http.MethodGet, op{id: "getBootstrapToken", summary: "Get a bootstrap token", params: []string{"tokenID"}, ok: 200, okSchema: "BootstrapToken", errors: reads, tag: tagAdmission}},
		{pathBootstrapToken, http.MethodDelete, op{id: "revokeBootstrapToken", summary: "Revoke a bootstrap token", params: []string{"tokenID"}, ok: 200, okSchema: "BootstrapToken", errors: reads, tag: tagAdmission}},
		{pathUsers, http.MethodGet, op{id: "listUsers", summary: "List the local users", ok: 200, okSchema: "UserList", errors: []int{403, 429, 503}, tag: tagAuth}},
		{pathUsers, http.MethodPost, op{id: "createUser", summary: "Create a local user", body: "NewUser", ok: 201, okSchema: "User", errors: append([]int{403}, crud...), tag: tagAuth}},
		{pathUser, http.MethodGet, op{id: "getUser", summary: "Get a local user", params: []string{"name"}, ok: 200, okSchema: "User", errors: reads, tag: tagAuth}},
		{pathUser, http.MethodPut, op{id: "updateUser", summary: "Replace a user's groups and state, and its password if one is given; revokes its tokens", params: []string{"name"}, body: "UserUpdate", ok: 200, okSchema: "User",
			errors: append([]int{403}, crud...), tag: tagAuth}},
		{pathUser, http.MethodDelete, op{id: "deleteUser", summary: "Delete a local user and revoke its tokens", params: []string{"name"}, ok: 204, errors: reads, tag: tagAuth}},
	}
	for _, k := range []struct{ kind, coll, item, schema string }{
		{rbac.KindRole, pathRoles, pathRole, "Role"},
		{rbac.KindRoleBinding, pathRoleBindings, pathRoleBinding, "RoleBinding"},
	} {
		rs = append(rs,
			securityRoute{k.coll, http.MethodGet, op{id: "list" + k.kind + "s", summary: "List " + k.kind + "s, built-in ones first", ok: 200, okSchema: k.schema + "List", errors: []int{403, 429, 503}, tag: tagRBAC}},
			securityRoute{k.coll, http.MethodPost, op{id: "create" + k.kind, summary: "Create a " + k.kind, body: k.schema, ok: 201, okSchema: k.schema, errors: append([]int{403}, crud...), tag: tagRBAC}},
			securityRoute{k.item, http.MethodGet, op{id: "get" + k.kind, summary: "Get a " + k.kind, params: []string{"name"}, ok: 200, okSchema: k.schema, errors: reads, tag: tagRBAC}},
			securityRoute{k.item, http.MethodPut, op{id: "put" + k.kind, summary: "Create (201) or replace (200) a " + k.kind + "; built-in ones cannot be changed (409)", params: []string{"name"}, body: k.schema,
				ok: 200, okAlso: []int{201}, okSchema: k.schema, errors: append([]int{403}, crud...), tag: tagRBAC}},
			securityRoute{k.item, http.MethodDelete, op{id: "delete" + k.kind, summary: "Delete a " + k.kind, params: []string{"name"}, ok: 204, errors: append([]int{409}, reads...), tag: tagRBAC}},
		)
	}
	return append(rs, securityRoute{pathAudit, http.MethodGet, op{id: "searchAudit", summary: "Search the audit trail; records in time order. Unknown parameters are refused (400).",
		params: []string{"auditUser", "auditKind", "auditVerb", "auditTenant", "auditVerdict", "auditFrom", "auditTo", "auditText", "auditQ", "auditLimit"},
		ok:     200, okSchema: "AuditResult", errors: []int{400, 403, 429, 503}, tag: tagAudit}})
}
