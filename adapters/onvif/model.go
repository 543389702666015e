package onvif

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/use-go/onvif/device"
	"github.com/use-go/onvif/ptz"
	"github.com/use-go/onvif/xsd"
	tt "github.com/use-go/onvif/xsd/onvif"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/classes"
	"github.com/osapgw/osapgw/model"
)

func xmlnsAttr(prefix, ns string) xml.Attr {
	return xml.Attr{Name: xml.Name{Local: "xmlns:" + prefix}, Value: ns}
}

func ptr(f float64) *float64 { return &f }

// The resource names.
const (
	resDevice = "device"
	resVideo  = "video/"
	resPTZ    = "ptz/"
)

// Operation names (the "ptz." ones are also accepted without the prefix).
const (
	OpContinuousMove = "ptz.continuous_move"
	OpStop           = "ptz.stop"
	OpAbsoluteMove   = "ptz.absolute_move"
	OpRelativeMove   = "ptz.relative_move"
	OpGotoPreset     = "ptz.goto_preset"
	OpSetPreset      = "ptz.set_preset"
	OpSnapshot       = "snapshot"
	OpReboot         = "reboot"
	OpSyncTime       = "sync_time"
)

// snapshotLimit bounds a snapshot's size.
const snapshotLimit = 16 << 20

// resourcesOf lists a connection's resources in model order.
func resourcesOf(k *camera) []string {
	out := []string{resDevice}
	for i := range k.profiles {
		out = append(out, resVideo+strconv.Itoa(i+1))
	}
	for i := range k.nodes {
		out = append(out, resPTZ+strconv.Itoa(i+1))
	}
	return out
}

var stateParam = []model.Param{{Name: "state", Type: model.TypeBool, Description: "true while the condition holds"}}

// videoEventParams are the parameters of a video source's events: its
// state (absent for a line crossing the camera sends as a pulse), the
// camera's rule and the video source (configuration) token the
// notification named, where it named them.
var videoEventParams = []model.Param{stateParam[0],
	{Name: "rule", Type: model.TypeString, Description: "the camera's rule that raised it (Source item Rule)"},
	{Name: "source", Type: model.TypeString, Description: "the video source or video source configuration token"},
}

// describe builds the model of a connected camera.
func describe(id string, k *camera) model.Device {
	d := model.Device{ID: id, Kind: Kind, Manufacturer: k.info.Manufacturer, Model: k.info.Model,
		Firmware: k.info.FirmwareVersion, Serial: k.info.SerialNumber}
	str := func(name, desc string) model.Attribute {
		return model.Attribute{Name: name, Type: model.TypeString, Description: desc}
	}
	d.Resources = append(d.Resources, model.Resource{Name: resDevice, Description: "the camera", Areas: []model.Area{
		{Name: "info", Attributes: []model.Attribute{str("manufacturer", ""), str("model", ""), str("firmware", ""), str("serial", ""), str("hardware_id", "")}},
		{Name: "maintenance", Operations: []model.Operation{
			{Name: OpReboot, Description: "reboot the camera", Outputs: []model.Param{{Name: "message", Type: model.TypeString}}},
			{Name: OpSyncTime, Description: "set the camera's clock to the gateway's (UTC, manual)"},
		}},
		{Name: "events", Events: []model.EventType{
			{Name: EventDigitalInput, Params: []model.Param{{Name: "input", Type: model.TypeString}, stateParam[0]}},
			{Name: EventGeneric, Description: "any other ONVIF notification", Params: []model.Param{
				{Name: "topic", Type: model.TypeString}, {Name: "source", Type: model.TypeJSON}, {Name: "data", Type: model.TypeJSON}}},
		}},
	}})
	for i, p := range k.profiles {
		p.Enc = k.encoder(p.Token)
		r := model.Resource{Name: resVideo + strconv.Itoa(i+1), Description: "profile " + p.Name, Class: classes.IPCamera.ID}
		r.Areas = append(r.Areas, model.Area{Name: "stream", Attributes: []model.Attribute{
			str("profile", "ONVIF profile token"), str("name", ""), str("stream_uri", "RTSP stream address"), str("snapshot_uri", "JPEG snapshot address"),
		}, Operations: []model.Operation{{Name: OpSnapshot, Description: "fetch a JPEG snapshot", Outputs: []model.Param{
			{Name: "size", Type: model.TypeInt, Unit: "B"}, {Name: "sha256", Type: model.TypeString},
			{Name: "picture", Type: model.TypeString, Description: "id at the picture service, when the platform offers one"},
			{Name: "picture_error", Type: model.TypeString, Description: "why the picture could not be uploaded"}}}}})
		enc := model.Area{Name: "encoder", Attributes: []model.Attribute{
			str("encoding", ""), str("resolution", "WIDTHxHEIGHT"),
			{Name: "width", Type: model.TypeInt, Unit: "px"}, {Name: "height", Type: model.TypeInt, Unit: "px"},
			{Name: "quality", Type: model.TypeFloat},
			{Name: "frame_rate", Type: model.TypeInt, Unit: "fps", Min: ptr(1), Max: ptr(120), Writable: p.Enc.RateCtl},
			{Name: "bitrate", Type: model.TypeInt, Unit: "kbit/s", Min: ptr(16), Max: ptr(100000), Writable: p.Enc.RateCtl},
			{Name: "gop", Type: model.TypeInt, Unit: "frames", Description: "group of pictures (GovLength)"},
		}}
		r.Areas = append(r.Areas, enc, model.Area{Name: "alarms", Events: []model.EventType{
			{Name: EventMotion, Params: videoEventParams}, {Name: EventTamper, Params: videoEventParams}, {Name: EventVideoLoss, Params: videoEventParams},
			{Name: EventLineCrossing, Description: "an object crossed a line rule", Params: videoEventParams},
			{Name: EventIntrusion, Description: "an object inside a field rule", Params: videoEventParams},
		}})
		d.Resources = append(d.Resources, r)
	}
	axis := func(names ...string) []model.Param {
		var ps []model.Param
		for _, n := range names {
			ps = append(ps, model.Param{Name: n, Type: model.TypeFloat, Min: ptr(-1), Max: ptr(1)})
		}
		return ps
	}
	for i, n := range k.nodes {
		d.Resources = append(d.Resources, model.Resource{Name: resPTZ + strconv.Itoa(i+1), Description: "PTZ head " + n.Name, Areas: []model.Area{{
			Name: "ptz",
			Attributes: []model.Attribute{
				{Name: "pan", Type: model.TypeFloat, Min: ptr(-1), Max: ptr(1)},
				{Name: "tilt", Type: model.TypeFloat, Min: ptr(-1), Max: ptr(1)},
				{Name: "zoom", Type: model.TypeFloat, Min: ptr(0), Max: ptr(1)},
				{Name: "moving", Type: model.TypeBool},
				{Name: "presets", Type: model.TypeJSON, Description: `[{"token":..,"name":..}]`},
			},
			Operations: []model.Operation{
				{Name: OpContinuousMove, Inputs: append(axis("pan", "tilt", "zoom"), model.Param{Name: "timeout", Type: model.TypeFloat, Unit: "s", Description: "stop after (default 10)"})},
				{Name: OpStop},
				{Name: OpAbsoluteMove, Inputs: axis("pan", "tilt", "zoom")},
				{Name: OpRelativeMove, Inputs: axis("pan", "tilt", "zoom")},
				{Name: OpGotoPreset, Inputs: []model.Param{{Name: "preset", Type: model.TypeString, Required: true}}},
				{Name: OpSetPreset, Inputs: []model.Param{{Name: "name", Type: model.TypeString}, {Name: "preset", Type: model.TypeString, Description: "token to overwrite"}},
					Outputs: []model.Param{{Name: "preset", Type: model.TypeString}}},
			},
		}}})
	}
	return d
}

// read reads the attributes of a resource from the camera.
// A video resource's encoder settings are read again (GetProfiles) unless
// fresh says the caller just did.
func (a *Adapter) read(ctx context.Context, k *camera, resource string, names []string, fresh bool) (map[string]model.Value, error) {
	now := time.Now()
	out := map[string]model.Value{}
	put := func(n string, v any) { out[n] = model.Value{V: v, At: now, Quality: model.QualityGood} }
	switch {
	case resource == resDevice:
		var info device.GetDeviceInformationResponse
		if err := k.call(ctx, "GetDeviceInformation", k.svc.Device, device.GetDeviceInformation{}, &info); err != nil {
			return nil, err
		}
		put("manufacturer", info.Manufacturer)
		put("model", info.Model)
		put("firmware", info.FirmwareVersion)
		put("serial", info.SerialNumber)
		put("hardware_id", info.HardwareId)
	case strings.HasPrefix(resource, resVideo):
		i, ok := resourceIndex(resource, resVideo)
		if !ok || i >= len(k.profiles) {
			return nil, fmt.Errorf("resource %q: %w", resource, adapters.ErrNotFound)
		}
		if !fresh {
			if err := k.readEncoders(ctx); err != nil {
				return nil, err
			}
		}
		p := k.profiles[i]
		p.Enc = k.encoder(p.Token)
		put("profile", p.Token)
		put("name", p.Name)
		put("stream_uri", p.StreamURI)
		put("snapshot_uri", p.SnapshotURI)
		put("encoding", p.Enc.Encoding)
		put("resolution", fmt.Sprintf("%dx%d", p.Enc.Width, p.Enc.Height))
		put("width", int64(p.Enc.Width))
		put("height", int64(p.Enc.Height))
		put("quality", p.Enc.Quality)
		if p.Enc.RateCtl {
			put("frame_rate", int64(p.Enc.FrameRate))
			put("bitrate", int64(p.Enc.Bitrate))
		}
		if p.Enc.GOP > 0 {
			put("gop", int64(p.Enc.GOP))
		}
	case strings.HasPrefix(resource, resPTZ):
		i, ok := resourceIndex(resource, resPTZ)
		if !ok || i >= len(k.nodes) {
			return nil, fmt.Errorf("resource %q: %w", resource, adapters.ErrNotFound)
		}
		st, err := k.ptzStatus(ctx, k.nodes[i].Profile)
		if err != nil {
			return nil, err
		}
		if pt := st.PTZStatus.Position.PanTilt; pt != nil {
			put("pan", pt.X)
			put("tilt", pt.Y)
		}
		if z := st.PTZStatus.Position.Zoom; z != nil {
			put("zoom", z.X)
		}
		ms := st.PTZStatus.MoveStatus
		put("moving", strings.EqualFold(ms.PanTilt, "MOVING") || strings.EqualFold(ms.Zoom, "MOVING"))
		pr, err := k.presets(ctx, k.nodes[i].Profile)
		if err != nil {
			return nil, err
		}
		list := make([]any, 0, len(pr.Preset))
		for _, p := range pr.Preset {
			list = append(list, map[string]any{"token": p.Token, "name": strings.TrimSpace(p.Name)})
		}
		put("presets", list)
	default:
		return nil, fmt.Errorf("resource %q: %w", resource, adapters.ErrNotFound)
	}
	if len(names) == 0 {
		return out, nil
	}
	sel := make(map[string]model.Value, len(names))
	for _, n := range names {
		v, ok := out[n]
		if !ok {
			return nil, fmt.Errorf("resource %q: attribute %q: %w", resource, n, adapters.ErrNotFound)
		}
		sel[n] = v
	}
	return sel, nil
}

// Invoke calls an operation of a resource. Its errors wrap the adapters
// sentinels: ErrNotFound for an unknown resource or operation,
// ErrBadRequest for inputs the operation refuses, ErrOffline or ErrTimeout
// when the camera does not answer.
func (a *Adapter) Invoke(ctx context.Context, resource, operation string, in map[string]any) (map[string]any, error) {
	k, err := a.camera(ctx)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(resource, resPTZ) && !strings.HasPrefix(operation, "ptz.") {
		operation = "ptz." + operation
	}
	dev := describe(a.id, k)
	r, ok := dev.Resource(resource)
	if !ok {
		return nil, fmt.Errorf("camera %q: resource %q: %w", a.id, resource, adapters.ErrNotFound)
	}
	op, ok := r.Operation(operation)
	if !ok {
		return nil, fmt.Errorf("camera %q: %s: operation %q: %w", a.id, resource, operation, adapters.ErrNotFound)
	}
	args, err := coerceInputs(op, in)
	if err != nil {
		return nil, fmt.Errorf("camera %q: %s: %s: %w: %w", a.id, resource, operation, adapters.ErrBadRequest, err)
	}
	out, err := a.invoke(ctx, k, resource, operation, args)
	if err != nil {
		return nil, a.wrap(fmt.Errorf("%s: %s: %w", resource, operation, err))
	}
	return out, nil
}

// coerceInputs checks the inputs of op: known names, types, ranges,
// required ones present.
func coerceInputs(op model.Operation, in map[string]any) (map[string]any, error) {
	out := map[string]any{}
	known := map[string]model.Param{}
	for _, p := range op.Inputs {
		known[p.Name] = p
	}
	for n, v := range in {
		p, ok := known[n]
		if !ok {
			return nil, fmt.Errorf("unknown input %q", n)
		}
		x, err := model.Coerce(p.Type, v, p.Min, p.Max)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", n, err)
		}
		out[n] = x
	}
	for _, p := range op.Inputs {
		if _, ok := out[p.Name]; p.Required && !ok {
			return nil, fmt.Errorf("input %q: missing", p.Name)
		}
	}
	return out, nil
}

func getF(m map[string]any, k string) (float64, bool) {
	v, ok := m[k].(float64)
	return v, ok
}

func (a *Adapter) invoke(ctx context.Context, k *camera, resource, operation string, in map[string]any) (map[string]any, error) {
	switch operation {
	case OpReboot:
		var r device.SystemRebootResponse
		if err := k.call(ctx, "SystemReboot", k.svc.Device, device.SystemReboot{}, &r); err != nil {
			return nil, err
		}
		return map[string]any{"message": strings.TrimSpace(r.Message)}, nil
	case OpSyncTime:
		now := time.Now().UTC()
		req := setSystemDateAndTime{DateTimeType: "Manual"}
		req.UTCDateTime.Time.Hour, req.UTCDateTime.Time.Minute, req.UTCDateTime.Time.Second = now.Hour(), now.Minute(), now.Second()
		req.UTCDateTime.Date.Year, req.UTCDateTime.Date.Month, req.UTCDateTime.Date.Day = now.Year(), int(now.Month()), now.Day()
		if err := k.call(ctx, "SetSystemDateAndTime", k.svc.Device, req, nil); err != nil {
			return nil, err
		}
		k.c.SetClockOffset(0)
		return map[string]any{}, nil
	case OpSnapshot:
		i, _ := resourceIndex(resource, resVideo)
		uri := k.profiles[i].SnapshotURI
		if uri == "" {
			return nil, fmt.Errorf("%w: the profile has no snapshot address", adapters.ErrNotFound)
		}
		data, err := k.c.Get(ctx, uri, snapshotLimit)
		if err != nil {
			return nil, &callError{Call: "GET snapshot", Err: err}
		}
		return a.snapshotOutput(ctx, data), nil
	}
	i, _ := resourceIndex(resource, resPTZ)
	prof := tt.ReferenceToken(k.nodes[i].Profile)
	pan, hasPan := getF(in, "pan")
	tilt, hasTilt := getF(in, "tilt")
	zoom, hasZoom := getF(in, "zoom")
	vec := func(ptSpace, zSpace string) tt.PTZVector {
		return tt.PTZVector{PanTilt: tt.Vector2D{X: pan, Y: tilt, Space: xsd.AnyURI(ptSpace)}, Zoom: tt.Vector1D{X: zoom, Space: xsd.AnyURI(zSpace)}}
	}
	switch operation {
	case OpContinuousMove:
		timeout := 10.0
		if t, ok := getF(in, "timeout"); ok && t > 0 {
			timeout = t
		}
		req := ptz.ContinuousMove{ProfileToken: prof, Timeout: xsDuration(time.Duration(timeout * float64(time.Second))),
			Velocity: tt.PTZSpeed{PanTilt: tt.Vector2D{X: pan, Y: tilt, Space: spaceVelocity}, Zoom: tt.Vector1D{X: zoom, Space: spaceZoomVel}}}
		return map[string]any{}, k.call(ctx, "ContinuousMove", k.svc.PTZ, req, nil)
	case OpStop:
		return map[string]any{}, k.call(ctx, "Stop", k.svc.PTZ, ptz.Stop{ProfileToken: prof, PanTilt: true, Zoom: true}, nil)
	case OpAbsoluteMove:
		if !hasPan || !hasTilt || !hasZoom {
			st, err := k.ptzStatus(ctx, string(prof))
			if err != nil {
				return nil, err
			}
			if p := st.PTZStatus.Position.PanTilt; p != nil {
				if !hasPan {
					pan = p.X
				}
				if !hasTilt {
					tilt = p.Y
				}
			}
			if z := st.PTZStatus.Position.Zoom; z != nil && !hasZoom {
				zoom = z.X
			}
		}
		req := ptz.AbsoluteMove{ProfileToken: prof, Position: vec(spacePosition, spaceZoomPos), Speed: speed(1)}
		return map[string]any{}, k.call(ctx, "AbsoluteMove", k.svc.PTZ, req, nil)
	case OpRelativeMove:
		req := ptz.RelativeMove{ProfileToken: prof, Translation: vec(spaceTranslation, spaceZoomTrans), Speed: speed(1)}
		return map[string]any{}, k.call(ctx, "RelativeMove", k.svc.PTZ, req, nil)
	case OpGotoPreset:
		req := ptz.GotoPreset{ProfileToken: prof, PresetToken: tt.ReferenceToken(in["preset"].(string)), Speed: speed(1)}
		return map[string]any{}, k.call(ctx, "GotoPreset", k.svc.PTZ, req, nil)
	case OpSetPreset:
		name, _ := in["name"].(string)
		token, _ := in["preset"].(string)
		req := ptz.SetPreset{ProfileToken: prof, PresetName: xsd.String(name), PresetToken: tt.ReferenceToken(token)}
		var r setPresetResponse
		if err := k.call(ctx, "SetPreset", k.svc.PTZ, req, &r); err != nil {
			return nil, err
		}
		return map[string]any{"preset": strings.TrimSpace(r.PresetToken)}, nil
	}
	return nil, fmt.Errorf("operation %q: %w", operation, adapters.ErrNotFound)
}
