# engine build rules
