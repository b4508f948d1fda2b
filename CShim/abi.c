/* The ABI is the header; this file only gives SwiftPM a source to build the target from. */
#include "idtoken.h"
