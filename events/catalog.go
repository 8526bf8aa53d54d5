package events

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The per-game cmd/value/payload table of SUD create_order is data, not
// code: a new game or cmd is a line in catalog.json.
//
//go:embed catalog.json
var catalogJSON []byte

// Payload field types a catalog may use.
const (
	FieldInt      = "int"       // a JSON integer
	FieldIntArray = "int_array" // a JSON array of Length integers
)

// Catalog is the set of games whose cmds, values and payloads are checked
// before an order is sent to SUD. It is read-only once loaded and safe for
// concurrent use.
type Catalog struct {
	games []Game
	byID  map[string]int
}

// Game is one SUD game and the cmds it sells.
type Game struct {
	MgID     string    `json:"mg_id"`
	Name     string    `json:"name"`
	Commands []Command `json:"commands"`
}

// Command is one paid cmd of a game. Value is the inclusive range of the
// create_order value; Payload lists the only keys the payload object may
// hold (none: no payload, or an empty object).
type Command struct {
	Cmd         string         `json:"cmd"`
	Description string         `json:"description,omitempty"`
	Value       ValueRange     `json:"value"`
	Payload     []PayloadField `json:"payload,omitempty"`
}

// ValueRange is an inclusive int32 range.
type ValueRange struct {
	Min int32 `json:"min"`
	Max int32 `json:"max"`
}

// PayloadField is one key of a cmd's payload object. An int field is
// bounded either by Values (an allowed set) or by Min..Max; an int_array
// field has exactly Length elements, each within Min..Max. Default is the
// value SUD assumes when an optional field is absent (nil: none, e.g. a
// random dice point).
type PayloadField struct {
	Name        string  `json:"name"`
	Type        string  `json:"type"`
	Required    bool    `json:"required"`
	Description string  `json:"description,omitempty"`
	Values      []int64 `json:"values,omitempty"`
	Min         *int64  `json:"min,omitempty"`
	Max         *int64  `json:"max,omitempty"`
	Length      int     `json:"length,omitempty"`
	Default     *int64  `json:"default,omitempty"`
}

// Command returns the cmd named cmd of g.
func (g Game) Command(cmd string) (Command, bool) {
	for _, c := range g.Commands {
		if c.Cmd == cmd {
			return c, true
		}
	}
	return Command{}, false
}

func (c Command) field(name string) (PayloadField, bool) {
	for _, f := range c.Payload {
		if f.Name == name {
			return f, true
		}
	}
	return PayloadField{}, false
}

var (
	defaultCatalog     *Catalog
	defaultCatalogOnce sync.Once
)

// DefaultCatalog returns the catalog embedded in the binary (the seed's 20
// games). It panics only if the embedded file is broken, which a test
// guards, so a release can never ship one.
func DefaultCatalog() *Catalog {
	defaultCatalogOnce.Do(func() {
		c, err := LoadCatalog(bytes.NewReader(catalogJSON))
		if err != nil {
			panic(fmt.Sprintf("events: embedded catalog.json: %v", err))
		}
		defaultCatalog = c
	})
	return defaultCatalog
}

// LoadCatalog reads a catalog in the format of catalog.json and checks it
// is self-consistent, so that a bad edit fails at load time rather than by
// rejecting or passing orders it should not.
func LoadCatalog(r io.Reader) (*Catalog, error) {
	var file struct {
		Source string `json:"source"` // for the reader: where the data comes from
		Note   string `json:"note"`
		Games  []Game `json:"games"`
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("decode catalog: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode catalog: trailing data after the catalog object")
	}
	c := &Catalog{games: file.Games, byID: make(map[string]int, len(file.Games))}
	for i, g := range file.Games {
		if err := checkGame(g); err != nil {
			return nil, fmt.Errorf("catalog game %d (%s): %w", i, g.MgID, err)
		}
		if _, dup := c.byID[g.MgID]; dup {
			return nil, fmt.Errorf("catalog game %d: duplicate mg_id %s", i, g.MgID)
		}
		c.byID[g.MgID] = i
	}
	return c, nil
}

func checkGame(g Game) error {
	if !ValidID(g.MgID) {
		return fmt.Errorf("mg_id %q is not a safe subject token", g.MgID)
	}
	if len(g.Commands) == 0 {
		return errors.New("no commands")
	}
	seen := map[string]bool{}
	for _, cmd := range g.Commands {
		if cmd.Cmd == "" {
			return errors.New("command without a name")
		}
		if seen[cmd.Cmd] {
			return fmt.Errorf("duplicate cmd %s", cmd.Cmd)
		}
		seen[cmd.Cmd] = true
		if cmd.Value.Min < 0 || cmd.Value.Min > cmd.Value.Max {
			return fmt.Errorf("cmd %s: value range %d..%d is empty or negative", cmd.Cmd, cmd.Value.Min, cmd.Value.Max)
		}
		fields := map[string]bool{}
		for _, f := range cmd.Payload {
			if f.Name == "" {
				return fmt.Errorf("cmd %s: payload field without a name", cmd.Cmd)
			}
			if fields[f.Name] {
				return fmt.Errorf("cmd %s: duplicate payload field %s", cmd.Cmd, f.Name)
			}
			fields[f.Name] = true
			if err := checkField(f); err != nil {
				return fmt.Errorf("cmd %s: payload field %s: %w", cmd.Cmd, f.Name, err)
			}
		}
	}
	return nil
}

func checkField(f PayloadField) error {
	switch f.Type {
	case FieldInt:
		if f.Length != 0 {
			return errors.New("length is only for int_array")
		}
	case FieldIntArray:
		if f.Length <= 0 {
			return errors.New("int_array needs a positive length")
		}
		if len(f.Values) > 0 || f.Default != nil {
			return errors.New("int_array takes min/max, not values or default")
		}
	default:
		return fmt.Errorf("unknown type %q", f.Type)
	}
	hasRange := f.Min != nil || f.Max != nil
	switch {
	case len(f.Values) > 0 && hasRange:
		return errors.New("give either values or min/max, not both")
	case len(f.Values) == 0 && (f.Min == nil || f.Max == nil):
		return errors.New("needs values or both min and max")
	case hasRange && *f.Min > *f.Max:
		return errors.New("min is above max")
	}
	if f.Default != nil {
		if f.Required {
			return errors.New("a required field cannot have a default")
		}
		if !f.allows(*f.Default) {
			return fmt.Errorf("default %d is not an allowed value", *f.Default)
		}
	}
	return nil
}

func (f PayloadField) allows(v int64) bool {
	if len(f.Values) > 0 {
		return slices.Contains(f.Values, v)
	}
	return v >= *f.Min && v <= *f.Max
}

func (f PayloadField) rangeText() string {
	if len(f.Values) > 0 {
		s := make([]string, len(f.Values))
		for i, v := range f.Values {
			s[i] = strconv.FormatInt(v, 10)
		}
		return "one of " + strings.Join(s, ", ")
	}
	return fmt.Sprintf("between %d and %d", *f.Min, *f.Max)
}

// Game returns the game with this mg_id.
func (c *Catalog) Game(mgID string) (Game, bool) {
	i, ok := c.byID[mgID]
	if !ok {
		return Game{}, false
	}
	return c.games[i], true
}

// Games returns every game in catalog order. The slice is a copy; the
// games' command slices are shared and must not be modified.
func (c *Catalog) Games() []Game {
	return slices.Clone(c.games)
}

// CheckCommand checks cmd, value and payload against the catalog entry of
// mgID and returns a *ValidationError naming the first offending field.
// Unknown games pass (nil): they get only the generic checks of
// Intent.Validate, and SUD stays the final judge. A payload that is empty
// or JSON null counts as absent.
func (c *Catalog) CheckCommand(mgID, cmd string, value int32, payload json.RawMessage) error {
	g, ok := c.Game(mgID)
	if !ok {
		return nil
	}
	command, ok := g.Command(cmd)
	if !ok {
		names := make([]string, len(g.Commands))
		for i, k := range g.Commands {
			names[i] = k.Cmd
		}
		return reject("cmd", "%q is not a cmd of game %s (%s); known: %s", cmd, g.MgID, g.Name, strings.Join(names, ", "))
	}
	if value < command.Value.Min || value > command.Value.Max {
		return reject("value", "must be between %d and %d for %s, got %d", command.Value.Min, command.Value.Max, cmd, value)
	}
	_, err := checkPayload(command, payload)
	return err
}

// checkPayload returns the payload's keys, decoded but not yet checked
// beyond their own field, so ApplyDefaults can reuse them.
func checkPayload(cmd Command, payload json.RawMessage) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if !payloadAbsent(payload) {
		if !isJSONObject(payload) {
			return nil, reject("payload", "must be a JSON object")
		}
		if err := json.Unmarshal(payload, &obj); err != nil {
			return nil, reject("payload", "must be a JSON object")
		}
	}
	if len(obj) > 0 {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, ok := cmd.field(k); !ok {
				return nil, reject("payload."+k, "is not a payload field of %s (accepted: %s)", cmd.Cmd, fieldNames(cmd))
			}
		}
	}
	for _, f := range cmd.Payload {
		raw, present := obj[f.Name]
		if !present {
			if f.Required {
				return nil, reject("payload."+f.Name, "is required for %s", cmd.Cmd)
			}
			continue
		}
		if err := checkFieldValue(f, raw); err != nil {
			return nil, err
		}
	}
	return obj, nil
}

func fieldNames(cmd Command) string {
	if len(cmd.Payload) == 0 {
		return "none"
	}
	names := make([]string, len(cmd.Payload))
	for i, f := range cmd.Payload {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

func checkFieldValue(f PayloadField, raw json.RawMessage) error {
	name := "payload." + f.Name
	switch f.Type {
	case FieldInt:
		v, ok := jsonInt(raw)
		if !ok {
			return reject(name, "must be an integer")
		}
		if !f.allows(v) {
			return reject(name, "must be %s, got %d", f.rangeText(), v)
		}
	case FieldIntArray:
		var elems []json.RawMessage
		if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) || json.Unmarshal(raw, &elems) != nil {
			return reject(name, "must be an array of %d integers", f.Length)
		}
		if len(elems) != f.Length {
			return reject(name, "must have exactly %d elements, got %d", f.Length, len(elems))
		}
		for i, e := range elems {
			el := fmt.Sprintf("%s[%d]", name, i)
			v, ok := jsonInt(e)
			if !ok {
				return reject(el, "must be an integer")
			}
			if !f.allows(v) {
				return reject(el, "must be %s, got %d", f.rangeText(), v)
			}
		}
	}
	return nil
}

// jsonInt accepts only a plain JSON integer: 1.0 or 1e2 may mean the same
// number to some parsers and not to others, so they are refused rather
// than guessed.
func jsonInt(raw json.RawMessage) (int64, bool) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// ApplyDefaults checks the payload like CheckCommand and returns it with
// every absent optional field that has a default filled in, so that what
// was charged for is spelled out in the order itself. Payloads of unknown
// games, and payloads that need nothing added, come back unchanged.
func (c *Catalog) ApplyDefaults(mgID, cmd string, value int32, payload json.RawMessage) (json.RawMessage, error) {
	if err := c.CheckCommand(mgID, cmd, value, payload); err != nil {
		return nil, err
	}
	g, ok := c.Game(mgID)
	if !ok {
		return payload, nil
	}
	command, _ := g.Command(cmd)
	obj, err := checkPayload(command, payload)
	if err != nil {
		return nil, err
	}
	added := false
	for _, f := range command.Payload {
		if _, present := obj[f.Name]; present || f.Default == nil {
			continue
		}
		if obj == nil {
			obj = map[string]json.RawMessage{}
		}
		obj[f.Name] = json.RawMessage(strconv.FormatInt(*f.Default, 10))
		added = true
	}
	if !added {
		return payload, nil
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode payload with defaults: %w", err)
	}
	return out, nil
}

func payloadAbsent(p json.RawMessage) bool {
	t := bytes.TrimSpace(p)
	return len(t) == 0 || string(t) == "null"
}

func isJSONObject(p json.RawMessage) bool {
	return bytes.HasPrefix(bytes.TrimSpace(p), []byte("{"))
}

// maxInt32 bounds every count of coins and every value SUD takes.
const maxInt32 = math.MaxInt32
