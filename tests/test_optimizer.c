#include "test.h"
void register_optimizer_tests(void) {}
