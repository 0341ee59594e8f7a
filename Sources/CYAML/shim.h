// libyaml (Debian's libyaml-dev), the C parser Yams wraps, used directly so the product
// links no Foundation: YAML's LibYAMLParser is its only importer. A pure parser: it reads
// the bytes it is given and nothing else.
#ifndef CTDOCTOR_CYAML_SHIM_H
#define CTDOCTOR_CYAML_SHIM_H

#include <yaml.h>

#endif
