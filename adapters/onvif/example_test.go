package onvif_test

import (
	"fmt"
	"os"

	"github.com/osapgw/osapgw/adapters/onvif"
)

func ExampleWriteTOML() {
	found := []onvif.Found{{
		Endpoint: "urn:uuid:c9790c3a-701b-464d-a189-0060351c8ada",
		XAddrs:   []string{"http://192.168.1.64/onvif/device_service"},
		Name:     "Gate", Hardware: "DS-2CD2143G2", Location: "north",
	}}
	_ = onvif.WriteTOML(os.Stdout, found)
	// Output:
	// # Gate, hardware DS-2CD2143G2, location north
	// # endpoint urn:uuid:c9790c3a-701b-464d-a189-0060351c8ada
	// [[device]]
	// id = "cam-gate-1"
	// kind = "onvif"
	// name = "Gate"
	// url = "http://192.168.1.64/onvif/device_service"
	// # username = "admin"
	// # password_file = "/etc/osapgw/secrets/cam-gate.password"
}

func ExampleParsePullMessages() {
	res, err := onvif.ParsePullMessages([]byte(`<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tt="http://www.onvif.org/ver10/schema"><e:Body><tev:PullMessagesResponse><tev:CurrentTime>2026-01-01T00:00:00Z</tev:CurrentTime><tev:TerminationTime>2026-01-01T00:01:00Z</tev:TerminationTime><wsnt:NotificationMessage><wsnt:Topic>tns1:VideoSource/MotionAlarm</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-01-01T00:00:00Z" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="Source" Value="vs1"/></tt:Source><tt:Data><tt:SimpleItem Name="State" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage></tev:PullMessagesResponse></e:Body></e:Envelope>`))
	if err != nil {
		panic(err)
	}
	m := res.Messages[0]
	fmt.Println(m.Topic, m.Operation, m.Source["Source"], m.Data["State"])
	// Output:
	// VideoSource/MotionAlarm Changed vs1 true
}
