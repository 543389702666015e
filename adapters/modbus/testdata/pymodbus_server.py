#!/usr/bin/python3
"""An independent Modbus server for the adapter's tests, on Debian's
python3-pymodbus (3.0). Serves the same register map on every unit given:

  holding 0      215           (int16, 0.1 scale: 21.5)
  holding 1-2    1.5           (float32 ABCD)
  holding 3-4    0x11223344    (int32 CDAB: 3344 1122)
  holding 10-13  "pymodbus"    (string, 4 registers)
  input   0-1    21.5          (float32 ABCD)
  coil 0 on, coil 1 off; discrete input 0 on

usage: pymodbus_server.py --tcp PORT | --rtu DEVICE [--units 1,2]
"""
import argparse
import asyncio
import logging

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer


def unit_context():
    hr = [0] * 64
    hr[0] = 215
    hr[1], hr[2] = 0x3FC0, 0x0000
    hr[3], hr[4] = 0x3344, 0x1122
    for i, pair in enumerate([b"py", b"mo", b"db", b"us"]):
        hr[10 + i] = pair[0] << 8 | pair[1]
    ir = [0] * 64
    ir[0], ir[1] = 0x41AC, 0x0000
    co = [True, False] + [False] * 62
    di = [True] + [False] * 63
    return ModbusSlaveContext(
        di=ModbusSequentialDataBlock(0, di),
        co=ModbusSequentialDataBlock(0, co),
        hr=ModbusSequentialDataBlock(0, hr),
        ir=ModbusSequentialDataBlock(0, ir),
        zero_mode=True,
    )


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tcp", type=int)
    p.add_argument("--rtu")
    p.add_argument("--units", default="1")
    args = p.parse_args()
    units = {int(u): unit_context() for u in args.units.split(",")}
    context = ModbusServerContext(slaves=units, single=False)
    logging.basicConfig(level=logging.WARNING)
    if args.tcp:
        await StartAsyncTcpServer(context=context, address=("127.0.0.1", args.tcp))
    else:
        from pymodbus.framer.rtu_framer import ModbusRtuFramer
        await StartAsyncSerialServer(context=context, framer=ModbusRtuFramer, port=args.rtu,
                                     baudrate=9600, bytesize=8, parity="N", stopbits=1, timeout=0.05)


if __name__ == "__main__":
    asyncio.run(main())
