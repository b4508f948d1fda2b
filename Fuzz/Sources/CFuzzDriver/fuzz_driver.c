/* Only the declaration in include/fuzz_driver.h is needed; SwiftPM wants one source file per C target. */
#include "fuzz_driver.h"
