package gateway

// ParseCost exposes parseCost to the fuzz test.
var ParseCost = parseCost
