// Struct sizes from native/bpf/redirect.h as this compiler lays them out (checked against TS).
#include "../../bpf/redirect.h"
#include "../backend.h"

namespace gpa {

LayoutSizes SharedLayoutSizes() {
  return {sizeof(gpa_endpoint), sizeof(gpa_origin), sizeof(gpa_conn_key)};
}

}  // namespace gpa
