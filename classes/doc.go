// Package classes holds the industry model templates of design 2.5: a
// class fixes the names, types and units of the attributes, events and
// operations of a kind of device, so that the platform can treat every
// vendor's energy meter (or inverter, or camera) alike.
//
// A resource that follows a class says so in its model.Resource.Class
// ("energy-meter/1"), which topo.add carries to the platform. The class's
// identifier ends in its version: a class never changes once released;
// what would change it is a new version ("energy-meter/2").
//
// # Guarantees
//
// A resource that passes Check, and names a class:
//   - has every required attribute, event and operation of the class;
//   - has every class name it uses with the class's type and unit (an
//     attribute called "power_active" in an energy-meter/1 is a float in W,
//     never an int or kW), every event parameter the class gives with its
//     type and unit, and every operation input and output the class gives
//     with its type, and no required input the class does not give.
//
// # Caveats
//
// A resource may have more than its class's names: Check says nothing of
// them. Check compares what the model declares, not the values the device
// sends; a register map that declares "V" but reads millivolts conforms.
package classes
