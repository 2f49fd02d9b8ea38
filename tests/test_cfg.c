#include "test.h"
void register_cfg_tests(void) {}
