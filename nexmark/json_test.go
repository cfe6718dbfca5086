package nexmark

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestJSONRoundTrip(t *testing.T) {
	evs := generateAll(t, Config{NumEvents: 2000})
	lines := jsonLines(t, evs)
	for i, line := range bytes.Split(bytes.TrimSuffix(lines, []byte("\n")), []byte("\n")) {
		if !json.Valid(line) {
			t.Fatalf("line %d is not valid JSON: %s", i, line)
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if e.Kind() != evs[i].Kind() || !e.EventTime().Equal(evs[i].EventTime()) {
			t.Fatalf("line %d: decoded %s at %v, want %s at %v", i, e.Kind(), e.EventTime(), evs[i].Kind(), evs[i].EventTime())
		}
		if again := e.AppendJSON(nil); !bytes.Equal(again, line) {
			t.Fatalf("line %d does not round-trip:\n%s\n%s", i, line, again)
		}
	}
}

func TestJSONShape(t *testing.T) {
	ts := DefaultBaseTime
	cases := []struct {
		e    Event
		want string
	}{
		{Event{Bid: &Bid{Auction: 1, Bidder: 2, Price: 3, Channel: "Google", URL: "https://x/?a=1&b=2", DateTime: ts.Add(100 * time.Millisecond), Extra: `a\b"c` + "\n\x01"}},
			`{"event_type":2,"person":null,"auction":null,"bid":{"auction":1,"bidder":2,"price":3,"channel":"Google","url":"https://x/?a=1&b=2","dateTime":"2015-07-15 00:00:00.1","extra":"a\\b\"c\n\u0001"}}`},
		{Event{Person: &Person{ID: 1000, Name: "Peter Jones", DateTime: ts}},
			`{"event_type":0,"person":{"id":1000,"name":"Peter Jones","emailAddress":"","creditCard":"","city":"","state":"","dateTime":"2015-07-15 00:00:00","extra":""},"auction":null,"bid":null}`},
		{Event{Auction: &Auction{ID: 1000, DateTime: ts.Add(11 * time.Millisecond), Expires: ts.Add(time.Hour + 120*time.Millisecond), Category: 10}},
			`{"event_type":1,"person":null,"auction":{"id":1000,"itemName":"","description":"","initialBid":0,"reserve":0,"dateTime":"2015-07-15 00:00:00.011","expires":"2015-07-15 01:00:00.12","seller":0,"category":10,"extra":""},"bid":null}`},
	}
	for _, c := range cases {
		got := c.e.AppendJSON(nil)
		if string(got) != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
		var back Event
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if again := back.AppendJSON(nil); string(again) != c.want {
			t.Errorf("round trip: %s", again)
		}
		// encoding/json HTML-escapes what MarshalJSON returns ('&' becomes
		// \u0026), which decodes to the same event.
		viaJSON, err := json.Marshal(c.e)
		if err != nil {
			t.Fatal(err)
		}
		var back2 Event
		if err := json.Unmarshal(viaJSON, &back2); err != nil {
			t.Fatal(err)
		}
		if again := back2.AppendJSON(nil); string(again) != c.want {
			t.Errorf("json.Marshal round trip: %s", again)
		}
	}
}

func TestJSONDecodeVariants(t *testing.T) {
	// Beam's Jackson writes Instants as epoch millis; ISO-8601 is Flink's
	// other JSON timestamp standard.
	for _, in := range []string{
		`{"bid":{"auction":1,"bidder":2,"price":3,"dateTime":1436918400100,"extra":""}}`,
		`{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"dateTime":"2015-07-15T00:00:00.1","extra":""}}`,
		`{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"dateTime":"2015-07-15T00:00:00.100Z","extra":""}}`,
	} {
		var e Event
		if err := json.Unmarshal([]byte(in), &e); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if e.Bid == nil || !e.EventTime().Equal(DefaultBaseTime.Add(100*time.Millisecond)) {
			t.Errorf("%s: decoded %+v", in, e.Bid)
		}
	}
	for _, in := range []string{
		`{"event_type":0,"person":null,"auction":null,"bid":null}`,
		`{"event_type":1,"bid":{"auction":1}}`,
		`{"person":{"id":1},"bid":{"auction":1}}`,
		`{"bid":{"dateTime":"yesterday"}}`,
	} {
		var e Event
		if err := json.Unmarshal([]byte(in), &e); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestEncoderRejectsEmptyEvent(t *testing.T) {
	var b strings.Builder
	if err := NewEncoder(&b).Encode(Event{}); err == nil {
		t.Error("encoded an empty Event")
	}
	if _, err := json.Marshal(Event{}); err == nil {
		t.Error("marshaled an empty Event")
	}
	if k := (Event{}).Kind(); k != KindNone || k.String() != "none" {
		t.Errorf("empty Event kind %v", k)
	}
}
