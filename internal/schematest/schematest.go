// Package schematest compiles and applies the JSON Schemas of docs/schema
// for tests: the events package's agreement tests and the docs package's
// check of what a real worker publishes use the same compiler settings.
// Only tests import it, so the validator stays out of the binary.
package schematest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Base is where the schemas' $id live; each $id is Base + file.
const Base = "https://raw.githubusercontent.com/coinsaga/coinsaga/main/docs/schema/"

// Doc reads schemaDir/file as a JSON document.
func Doc(t testing.TB, schemaDir, file string) any {
	t.Helper()
	f, err := os.Open(filepath.Join(schemaDir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s is not JSON: %v", file, err)
	}
	return doc
}

// Load compiles schemaDir/file, draft 2020-12, with format assertion on
// (ipv4, ipv6, date-time are checked, as a strict consumer would).
func Load(t testing.TB, schemaDir, file string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	// The $id, not the file's path, so that "#/$defs/..." refs resolve
	// against the schema's published address.
	if err := c.AddResource(Base+file, Doc(t, schemaDir, file)); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	sch, err := c.Compile(Base + file)
	if err != nil {
		t.Fatalf("%s does not compile: %v", file, err)
	}
	return sch
}

// Validate is nil when data is a JSON document sch accepts.
func Validate(sch *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// HeaderObject is a message's headers as dead-letter-headers.json sees
// them: each name with its one value.
func HeaderObject(t testing.TB, h nats.Header) []byte {
	t.Helper()
	m := map[string]string{}
	for k, v := range h {
		if len(v) != 1 {
			t.Errorf("header %s has %d values", k, len(v))
		}
		m[k] = v[0]
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
