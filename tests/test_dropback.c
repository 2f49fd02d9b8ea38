#include "test.h"
void register_dropback_tests(void) {}
