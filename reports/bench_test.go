package reports

import (
	"io"
	"testing"
)

func BenchmarkRenderHTML(b *testing.B) {
	run := generateRun(true)
	for b.Loop() {
		if err := RenderHTML(io.Discard, run); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data, err := MarshalRun(generateRun(true))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(data, "run.json"); err != nil {
			b.Fatal(err)
		}
	}
}
