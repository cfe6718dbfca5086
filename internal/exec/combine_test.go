package exec

import "testing"

func TestCombine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		chans    []channelState
		wantWM   int64
		wantIdle bool
	}{
		{"min of active", []channelState{{wm: 5}, {wm: 3}, {wm: 9}}, 3, false},
		{"idle channel ignored", []channelState{{wm: 5}, {wm: 1, idle: true}}, 5, false},
		{"ended channel ignored", []channelState{{wm: 5}, {wm: MaxWatermark, ended: true}}, 5, false},
		{"all idle", []channelState{{wm: 4, idle: true}, {wm: 7, idle: true}}, 7, true},
		{"all ended", []channelState{{ended: true, wm: MaxWatermark}}, MaxWatermark, false},
		{"nothing yet", []channelState{{wm: MinWatermark}, {wm: 10}}, MinWatermark, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wm, idle := combine(tc.chans)
			if wm != tc.wantWM || idle != tc.wantIdle {
				t.Errorf("combine = (%d, %v), want (%d, %v)", wm, idle, tc.wantWM, tc.wantIdle)
			}
		})
	}
}
