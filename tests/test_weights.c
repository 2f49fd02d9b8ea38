#include "test.h"
void register_weights_tests(void) {}
