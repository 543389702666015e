package platform_test

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/osapgw/osapgw/osap/platform"
)

func ExampleEventStore() {
	s, err := platform.OpenEventStore("") // memory only; give a path to keep events
	if err != nil {
		panic(err)
	}
	defer s.Close()
	s.Add(platform.Event{DevID: "gw-1", ID: "41"})
	s.Add(platform.Event{DevID: "gw-1", ID: "42"})
	_, added, _ := s.Add(platform.Event{DevID: "gw-1", ID: "41"}) // redelivered
	fmt.Println("added again:", added)
	for _, ev := range s.Events("gw-1", 0, 10) {
		fmt.Println(ev.Seq, ev.ID)
	}
	// Output:
	// added again: false
	// 1 41
	// 2 42
}

func ExampleNewAPI() {
	reg, err := platform.NewRegistry("") // the registry gives the DAS its session keys
	if err != nil {
		panic(err)
	}
	d, err := platform.NewDAS(platform.DASConfig{Listen: "127.0.0.1:0", Keys: reg})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	api := platform.NewAPI([]*platform.DAS{d})
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/devices", nil))
	fmt.Println(rec.Code, strings.Join(strings.Fields(rec.Body.String()), " "))
	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/devices/nobody", nil))
	fmt.Println(rec.Code, strings.Join(strings.Fields(rec.Body.String()), " "))
	// Output:
	// 200 { "devices": [] }
	// 404 { "error": "device \"nobody\": device not found" }
}
