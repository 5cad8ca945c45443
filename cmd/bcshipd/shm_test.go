package main

import (
	"errors"
	"io"
	"testing"
)

func TestParseOptionsSharedMemory(t *testing.T) {
	base := []string{"--id", "1", "--insecure", "--listen", ":1"}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want bool
	}{
		{base, nil, false},
		{append(base, "--shm"), nil, true},
		{base, map[string]string{"BCSHIP_SHM": "1"}, true},
		{base, map[string]string{"BCSHIP_SHM": "0"}, false},
	} {
		o, err := parseOptions(tc.args, env(tc.env), io.Discard)
		if err != nil || o.shm != tc.want {
			t.Errorf("parseOptions(%q, %v): shm %v, %v; want %v", tc.args, tc.env, o != nil && o.shm, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args    []string
		env     map[string]string
		setting string
	}{
		{base, map[string]string{"BCSHIP_SHM": "yes please"}, "BCSHIP_SHM"},
		{append(base, "--shm", "--rdma-dev", "rxe0"), nil, "--shm"},
	} {
		_, err := parseOptions(tc.args, env(tc.env), io.Discard)
		var ce *configError
		if !errors.As(err, &ce) || ce.Setting != tc.setting {
			t.Errorf("parseOptions(%q, %v) = %v, want a configError for %s", tc.args, tc.env, err, tc.setting)
		}
	}
}
