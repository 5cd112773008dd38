package kube

import (
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
)

// Serializer returns the API machinery's YAML serializer over client-go's scheme; strict makes
// decoding refuse unknown and duplicate fields.
func Serializer(strict bool) *json.Serializer {
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		json.SerializerOptions{Yaml: true, Strict: strict})
}

// WriteYAML writes objects as one multi-document YAML stream, the form kubectl apply -f takes.
func WriteYAML(w io.Writer, objs []runtime.Object) error {
	s := Serializer(false)
	for i, o := range objs {
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if err := s.Encode(o, w); err != nil {
			return fmt.Errorf("kube: encoding %T: %w", o, err)
		}
	}
	return nil
}
