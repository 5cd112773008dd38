package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/model"
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
			"ports":    jmap{"type": "array", "nullable": true, "maxItems": model.MaxPortsPerRule, "items": jmap{"type": "string", "pattern": "^[0-9]{1,5}(-[0-9]{1,5})?$"}},
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
			"state":            jmap{"type": "string", "enum": []string{"", model.DSNStateAdmitted, model.DSNStateSyncing, model.DSNStateInSync, model.DSNStateLagging, model.DSNStateQuarantined, model.DSNStateOffline}},
			"desiredRevision":  revisionSchema(""),
			"appliedRevision":  revisionSchema(""),
			"lastHeartbeat":    str("RFC 3339 time"),
			"admittedAt":       str("RFC 3339 time"),
			"sessionID":        str(""),
			"ackTimes":         array(schemaRef("RevisionAck")),
			"corrective":       schemaRef("CorrectiveCount"),
			"lastCorrective":   str("resend, resync or quarantine"),
			"connectedSeconds": jmap{"type": "number"},
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
	return jmap{
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
}

// op describes one operation for the document.
type op struct {
	id, summary string
	params      []string
	body        string // schema name of the JSON request body, if any
	ok          int
	okSchema    string
	errors      []int
}

func (o op) build() jmap {
	out := jmap{"operationId": o.id, "summary": o.summary}
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
	resp := jmap{strconv.Itoa(o.ok): jmap{"description": http.StatusText(o.ok), "content": jsonContent(schemaRef(o.okSchema))}}
	for _, code := range o.errors {
		resp[strconv.Itoa(code)] = responseRef("Error")
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
	add(pathDSN, http.MethodDelete, op{id: "decommissionDSN", summary: "Decommission a DSN", params: []string{"id", "dryRun"}, ok: 200, okSchema: "DSN", errors: []int{400, 404, 429, 501, 503}})
	add(pathTransactions, http.MethodPost, op{id: "transaction", summary: "Commit operations all or nothing", params: []string{"dryRun"}, body: "TransactionRequest", ok: 200, okSchema: "TransactionResponse", errors: writeErrors})
	add(pathConvergence, http.MethodGet, op{id: "convergence", summary: "How many DSNs applied a revision", params: []string{"revision"}, ok: 200, okSchema: "Convergence", errors: []int{400, 429, 501, 503}})
	add(pathRevision, http.MethodGet, op{id: "revision", summary: "The store's current revision", ok: 200, okSchema: "Revision", errors: []int{429}})
	add("/healthz", http.MethodGet, op{id: "healthz", summary: "The process is alive", ok: 200, okSchema: "Status"})
	add("/readyz", http.MethodGet, op{id: "readyz", summary: "The control plane can serve", ok: 200, okSchema: "Status", errors: []int{503}})

	ps[pathWatch] = jmap{"get": jmap{
		"operationId": "watch",
		"summary":     "Stream changes after a revision as server-sent events (id: revision; event: ADDED, MODIFIED, DELETED or ERROR; data: a WatchEvent). Honours Last-Event-ID.",
		"parameters":  []any{paramRef("fromRevision"), paramRef("watchKind"), paramRef("watchTenant")},
		"responses": jmap{
			"200":     jmap{"description": "an event stream; each data line is a WatchEvent", "content": jmap{"text/event-stream": jmap{"schema": jmap{"type": "string"}}}},
			"400":     responseRef("Error"),
			"410":     responseRef("Error"),
			"default": responseRef("Error"),
		},
	}}
	ps[pathOpenAPI] = jmap{"get": jmap{
		"operationId": "openapi",
		"summary":     "This document",
		"responses":   jmap{"200": jmap{"description": "OpenAPI 3 document", "content": jsonContent(jmap{"type": "object"})}},
	}}
	ps["/metrics"] = jmap{"get": jmap{
		"operationId": "metrics",
		"summary":     "Prometheus metrics",
		"responses":   jmap{"200": jmap{"description": "Prometheus text format", "content": jmap{"text/plain": jmap{"schema": jmap{"type": "string"}}}}},
	}}
	return ps
}

// buildOpenAPI renders the OpenAPI 3 document.
func buildOpenAPI() ([]byte, error) {
	doc := jmap{
		"openapi": "3.0.3",
		"info": jmap{
			"title":       "dsnscale reference control plane",
			"version":     model.APIVersion,
			"description": "Northbound API: tenants, networks and policies, DSNs, transactions, watch and convergence.",
		},
		"paths": paths(),
		"components": jmap{
			"schemas":    schemas(),
			"parameters": parameters(),
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
